/**
 * POST /predict[/{model}[/{version}]]: read digits from JSON pixels or a batch, a base64 image, a raw
 * image body, a multipart upload or raw float32 — whatever the client has (see predict-formats.ts). The
 * model's own normalization is applied when it needs it; answers carry probabilities.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { remoteAddress } from '../body-budget.ts';
import { clientSignal } from '../client-gone.ts';
import { predict } from '../inference.ts';
import { commonErrors, errorResponse, type ModelPathParams, modelParams } from '../openapi.ts';
import { type PredictInput, predictContent, readPredictBody } from '../predict-formats.ts';
import type { ModelRepository } from '../repository.ts';
import { readsBody } from '../route-body.ts';
import { type Prediction, PredictionSchema } from '../schemas.ts';
import { refuseIfUnread } from '../unread-answers.ts';
import { withModel } from './lookup.ts';

export interface PredictRouteOptions {
  repository: ModelRepository;
  /** Body limit in bytes. */
  maxBodyBytes: number;
}

/** A body with when its reading began. */
type Timed<T> = T & { start: number };

/** A /predict route: its body, of any content type predict-formats.ts reads, is read by `readsBody` alone. */
const predictRoute = <Request extends { params?: ModelPathParams }>(
  path: string,
  maxBodyBytes: number,
  request: Request,
) =>
  createRoute({
    method: 'post',
    path,
    tags: ['predict'],
    summary: `Read digits with ${path === '/predict' ? 'the first served model' : path.includes('version') ? 'one version of a model' : "a model's newest version"}`,
    description:
      'JSON pixels (784 numbers or 28 rows) or a batch (`inputs`), a base64 image, a raw PNG/JPEG/WebP/GIF body, a multipart `file`, or N×784 raw float32.',
    // latencyMs counts from before the body is read, as it always has (decoding an image is part of it).
    middleware: readsBody(async (c) => ({ start: performance.now(), ...(await readPredictBody(c, maxBodyBytes)) })),
    request: { ...request, body: { content: predictContent, required: true } },
    responses: {
      200: {
        description: 'The prediction (an array of them for `inputs` or several float32 images)',
        content: { 'application/json': { schema: PredictionSchema } },
      },
      ...commonErrors,
      404: errorResponse('Unknown model or version'),
      413: errorResponse("Request body over the limit, or the image's pixels or a side of it"),
      415: errorResponse('Unsupported content type, or a Content-Encoding other than gzip, deflate or br'),
      422: errorResponse('The image has no ink, or an aspect ratio past 20:1'),
      503: errorResponse(
        "Busy decoding other images, the model's queue full (queue_full, Retry-After) or the model failed; or the server is stopping",
      ),
    },
  });

export function predictRoutes({ repository, maxBodyBytes }: PredictRouteOptions): OpenAPIHono {
  const app = new OpenAPIHono();
  const answer = (c: Context, { start, images, count, batch }: Timed<PredictInput>, name?: string, version?: number) =>
    withModel(repository, name, version, async (model) => {
      const results = await predict(model, images, count, clientSignal(c), remoteAddress(c));
      refuseIfUnread(c);
      const latencyMs = performance.now() - start;
      const answers = results.map((r) => ({
        model: model.name,
        version: model.version,
        prediction: r.prediction,
        probabilities: r.probabilities,
        latencyMs,
      }));
      // The spec's 200 names one Prediction (its description says a batch gets a list of them): typed as that.
      return c.json((batch ? answers : answers[0]) as Prediction, 200);
    });
  app.openapi(predictRoute('/predict', maxBodyBytes, {}), (c) => answer(c, c.var.body));
  for (const path of ['/predict/{model}', '/predict/{model}/{version}']) {
    app.openapi(predictRoute(path, maxBodyBytes, modelParams(path)), (c) => {
      const { model, version } = c.req.valid('param');
      return answer(c, c.var.body, model, version);
    });
  }
  return app;
}
