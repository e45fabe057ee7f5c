/**
 * GET /api/models (the web demo's list: versions, readiness, metadata, why a version is not served) and
 * GET /models/{model}/{version}/model.onnx (the exact bytes the server loaded, for in-browser inference —
 * never whatever is on disk now, which may be half-copied or newer), sent as a view of the loaded bytes
 * (no copy per request) under the large-response limits.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ifNoneMatchHits } from '../etag.ts';
import { LARGE_RESPONSE_DEFAULTS, LargeResponses, viewStream } from '../large-responses.ts';
import { errorResponse, modelParams } from '../openapi.ts';
import type { ModelRepository } from '../repository.ts';
import { ModelListSchema } from '../schemas.ts';
import { withModel } from './lookup.ts';

export interface ModelRoutesOptions {
  repository: ModelRepository;
  /** Shared with the other routes that send large bodies (default: a limiter of this route's own). */
  largeResponses?: LargeResponses;
}

const listRoute = createRoute({
  method: 'get',
  path: '/api/models',
  tags: ['models'],
  summary: 'Every model and version: ready or not (and why), provider, metadata',
  responses: {
    200: { description: 'The repository', content: { 'application/json': { schema: ModelListSchema } } },
  },
});

const FILE_PATH = '/models/{model}/{version}/model.onnx';
const fileRoute = createRoute({
  method: 'get',
  path: FILE_PATH,
  tags: ['models'],
  summary: 'The model file as loaded by the server',
  request: modelParams(FILE_PATH),
  responses: {
    200: {
      description: 'ONNX model bytes',
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    304: { description: 'Not modified (If-None-Match)' },
    404: errorResponse('Unknown model or version'),
    503: errorResponse('Too many large downloads in progress; retry after Retry-After seconds'),
  },
});

export function modelRoutes({ repository, largeResponses }: ModelRoutesOptions): OpenAPIHono {
  const large = largeResponses ?? new LargeResponses(LARGE_RESPONSE_DEFAULTS.maxConcurrent);
  const app = new OpenAPIHono();
  app.openapi(listRoute, (c) =>
    c.json(
      repository.names().map((name) => ({
        name,
        versions: repository.versions(name).map((v) => ({
          version: v.version,
          ready: v.ready,
          ...(v.served ? { provider: v.served.provider, metadata: v.served.metadata } : {}),
          ...(v.failure ? { error: v.failure.error } : {}),
        })),
      })),
      200,
    ),
  );
  app.openapi(fileRoute, (c) => {
    const { model: name, version } = c.req.valid('param');
    return withModel(repository, name, version, async (model) => {
      const headers = { 'Cache-Control': 'no-cache', ETag: `"${model.hash}"` };
      if (ifNoneMatchHits(c.req.header('if-none-match'), headers.ETag)) return c.body(null, 304, headers);
      const busy = large.admit(c);
      if (busy) return busy;
      // The view keeps the loaded bytes alive after a reload replaces them, until this response ends.
      return c.body(viewStream([model.bytes]), 200, {
        ...headers,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(model.bytes.byteLength),
      });
    });
  });
  return app;
}
