/**
 * POST /predict[/{model}[/{version}]]: read digits from JSON pixels or a batch, a base64 image, a raw
 * image body, a multipart upload or raw float32 — whatever the client has (see predict-formats.ts). The
 * model's own normalization is applied when it needs it; answers carry probabilities.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { predict } from '../inference.ts';
import { commonErrors, errorResponse, mount, pathParams } from '../openapi.ts';
import { predictContent, readPredictBody } from '../predict-formats.ts';
import type { ModelRepository } from '../repository.ts';
import { PredictionSchema } from '../schemas.ts';
import { parseVersion, withModel } from './lookup.ts';

export interface PredictRouteOptions {
  repository: ModelRepository;
  /** Body limit in bytes. */
  maxBodyBytes: number;
}

const PATHS = ['/predict', '/predict/{model}', '/predict/{model}/{version}'];

export function predictRoutes({ repository, maxBodyBytes }: PredictRouteOptions): OpenAPIHono {
  const app = new OpenAPIHono();
  for (const path of PATHS) {
    const route = createRoute({
      method: 'post',
      path,
      tags: ['predict'],
      summary: `Read digits with ${path === '/predict' ? 'the first served model' : path.includes('version') ? 'one version of a model' : "a model's newest version"}`,
      description:
        'JSON pixels (784 numbers or 28 rows) or a batch (`inputs`), a base64 image, a raw PNG/JPEG/WebP/GIF body, a multipart `file`, or N×784 raw float32.',
      request: { ...pathParams(path), body: { content: predictContent, required: true } },
      responses: {
        200: {
          description: 'The prediction (an array of them for `inputs` or several float32 images)',
          content: { 'application/json': { schema: PredictionSchema } },
        },
        ...commonErrors,
        404: errorResponse('Unknown model or version'),
        415: errorResponse('Unsupported content type'),
        422: errorResponse('The image has no ink'),
        503: errorResponse('Busy decoding other images; retry'),
      },
    });
    mount(app, route, async (c) => {
      const start = performance.now();
      const { images, count, batch } = await readPredictBody(c, maxBodyBytes);
      return withModel(repository, c.req.param('model'), parseVersion(c.req.param('version')), async (model) => {
        const results = await predict(model, images, count);
        const latencyMs = performance.now() - start;
        const answers = results.map((r) => ({
          model: model.name,
          version: model.version,
          prediction: r.prediction,
          probabilities: r.probabilities,
          latencyMs,
        }));
        return c.json(batch ? answers : answers[0]);
      });
    });
  }
  return app;
}
