/**
 * GET /api/models (the web demo's list: versions, readiness, metadata, why a version is not served) and
 * GET /models/{model}/{version}/model.onnx (the exact bytes the server loaded, for in-browser inference —
 * never whatever is on disk now, which may be half-copied or newer).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { errorResponse, mount, pathParams } from '../openapi.ts';
import type { ModelRepository } from '../repository.ts';
import { ModelListSchema } from '../schemas.ts';
import { withModel } from './lookup.ts';

export function modelRoutes({ repository }: { repository: ModelRepository }): OpenAPIHono {
  const app = new OpenAPIHono();
  mount(
    app,
    createRoute({
      method: 'get',
      path: '/api/models',
      tags: ['models'],
      summary: 'Every model and version: ready or not (and why), provider, metadata',
      responses: {
        200: { description: 'The repository', content: { 'application/json': { schema: ModelListSchema } } },
      },
    }),
    (c) =>
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
      ),
  );
  const path = '/models/{model}/{version}/model.onnx';
  mount(
    app,
    createRoute({
      method: 'get',
      path,
      tags: ['models'],
      summary: 'The model file as loaded by the server',
      request: pathParams(path),
      responses: {
        200: {
          description: 'ONNX model bytes',
          content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
        },
        404: errorResponse('Unknown model or version'),
      },
    }),
    (c) =>
      withModel(repository, c.req.param('model'), c.req.param('version'), async (model) => {
        const etag = `"${model.hash}"`;
        if (c.req.header('if-none-match') === etag) return c.body(null, 304);
        return c.body(new Uint8Array(model.bytes), 200, {
          'Content-Type': 'application/octet-stream',
          'Cache-Control': 'no-cache',
          ETag: etag,
        });
      }),
  );
  return app;
}
