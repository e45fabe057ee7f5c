/**
 * Triton's statistics extension: GET /v2/models/stats, /v2/models/{model}/stats and
 * /v2/models/{model}/versions/{version}/stats, in Triton's JSON shape (counted by each served version,
 * see inference-stats.ts), so Triton's tools and dashboards read them unchanged.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { shownName } from '../../node/repository.ts';
import { HttpError } from '../errors.ts';
import { type ModelPathParams, modelParams, protocolErrorResponse } from '../openapi.ts';
import type { ModelRepository, ServedVersion } from '../repository.ts';
import { ModelStatsSchema } from '../schemas.ts';

const NONE = { count: 0, ns: 0 };

export function tritonStats(model: ServedVersion) {
  const s = model.stats;
  return {
    name: model.name,
    version: String(model.version),
    last_inference: s.lastInference,
    inference_count: s.inferenceCount,
    execution_count: s.executionCount,
    inference_stats: {
      success: { ...s.success },
      fail: { ...s.fail },
      queue: { ...s.queue },
      compute_input: { ...s.computeInput },
      compute_infer: { ...s.computeInfer },
      compute_output: { ...s.computeOutput },
      // No response cache: Triton reports zeros when caching is off.
      cache_hit: NONE,
      cache_miss: NONE,
    },
    batch_stats: s.batchStats(),
  };
}

/** The statistics of the loaded versions asked for (all, a model's, one); none of a named model is a 404. */
export function loadedStatistics(repository: ModelRepository, name?: string, version?: number) {
  const versions = repository.servedVersions(name).filter((v) => version === undefined || v.version === version);
  if (name !== undefined && versions.length === 0)
    throw new HttpError(
      404,
      'model_not_found',
      `model '${shownName(name)}'${version === undefined ? '' : ` version ${version}`} is not loaded`,
    );
  return { model_stats: versions.map(tritonStats) };
}

const statsRoute = <Request extends { params?: ModelPathParams }>(path: string, of: string, request: Request) =>
  createRoute({
    method: 'get',
    path,
    request,
    tags: ['v2'],
    summary: `Statistics (Triton's extension) of ${of}`,
    responses: {
      200: {
        description: 'Counts and cumulative times',
        content: { 'application/json': { schema: ModelStatsSchema } },
      },
      400: protocolErrorResponse('Malformed version'),
      404: protocolErrorResponse('Model or version not loaded'),
    },
  });

const ALL = statsRoute('/v2/models/stats', 'every loaded version', {});
const MODEL_PATHS = ['/v2/models/{model}/stats', '/v2/models/{model}/versions/{version}/stats'];

export function statsRoutes({ repository }: { repository: ModelRepository }): OpenAPIHono {
  const app = new OpenAPIHono();
  const stats = (name?: string, version?: number) => loadedStatistics(repository, name, version);
  app.openapi(ALL, (c) => c.json(stats(), 200));
  for (const path of MODEL_PATHS) {
    const of = path.includes('{version}') ? 'one version' : "a model's loaded versions";
    app.openapi(statsRoute(path, of, modelParams(path)), (c) => {
      const { model, version } = c.req.valid('param');
      return c.json(stats(model, version), 200);
    });
  }
  return app;
}
