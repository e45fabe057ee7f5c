/**
 * PUT /api/models/{model}/versions (serve --allow-upload): publish the body, a model.onnx, as the model's
 * next version, behind model-control-access.ts. The body is raw bytes, read within the upload limit.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { readBody } from '../body.ts';
import { HttpError } from '../errors.ts';
import { type ModelControlAccess, mayControlModels } from '../model-control-access.ts';
import { commonErrors, errorResponse, modelParams } from '../openapi.ts';
import type { ModelRepository } from '../repository.ts';
import { inOrder, readsBody } from '../route-body.ts';
import { controlBusyResponse, controlling } from './controlling.ts';

export interface UploadSettings {
  /** The largest model file taken, in bytes (its base64 in JSON may be a third more). */
  maxBytes: number;
}

/** The body limit of an upload route: a model file of `maxBytes` as base64 in JSON, with room for the rest. */
export const uploadBodyBytes = (maxBytes: number) => Math.ceil((maxBytes * 4) / 3) + 64 * 1024;

/** The routes that take model files: Triton's load with file overrides, and a plain PUT of the bytes. */
export const UPLOAD_PATH = /^\/(v2\/repository\/models\/[^/]+\/load|api\/models\/[^/]+\/versions)$/;

const PATH = '/api/models/{model}/versions';

const uploadRoute = (access: ModelControlAccess, uploads: UploadSettings) =>
  createRoute({
    method: 'put',
    path: PATH,
    tags: ['models'],
    summary: 'Publish a model.onnx as the next version of a model (serve --allow-upload)',
    // The key is checked before a byte of the file is read.
    middleware: inOrder(
      mayControlModels(access),
      readsBody((c) => readBody(c, uploads.maxBytes)),
    ),
    request: {
      ...modelParams(PATH),
      body: {
        content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        required: true,
      },
    },
    responses: {
      201: {
        description: 'Published and serving',
        content: { 'application/json': { schema: z.object({ model: z.string(), version: z.number() }) } },
      },
      ...commonErrors,
      400: errorResponse('The file did not load (with why)'),
      401: errorResponse('Missing or wrong API key'),
      403: errorResponse('The server listens on the network without an API key'),
      503: controlBusyResponse,
    },
  });

export function uploadRoutes(repository: ModelRepository, access: ModelControlAccess, uploads: UploadSettings) {
  const app = new OpenAPIHono();
  app.openapi(uploadRoute(access, uploads), async (c) => {
    const bytes = c.var.body;
    if (bytes.length === 0) throw new HttpError(400, 'empty_file', 'the model file is empty');
    const { model: name } = c.req.valid('param');
    let version = 0;
    await controlling(
      async () => {
        version = await repository.publish(name, undefined, bytes);
      },
      () => repository.stopping,
    );
    return c.json({ model: name, version }, 201);
  });
  return app;
}
