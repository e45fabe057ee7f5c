/**
 * Triton's statistics extension: GET /v2/models/stats, /v2/models/{model}/stats and
 * /v2/models/{model}/versions/{version}/stats, in Triton's JSON shape (counted by each served version,
 * see inference-stats.ts), so Triton's tools and dashboards read them unchanged.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { HttpError } from '../errors.ts';
import { errorResponse, mount, pathParams } from '../openapi.ts';
import type { ModelRepository, ServedVersion } from '../repository.ts';
import { ModelStatsSchema } from '../schemas.ts';
import { parseVersion } from './lookup.ts';

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

export function statsRoutes({ repository }: { repository: ModelRepository }): OpenAPIHono {
  const app = new OpenAPIHono();
  for (const path of ['/v2/models/stats', '/v2/models/{model}/stats', '/v2/models/{model}/versions/{version}/stats']) {
    mount(
      app,
      createRoute({
        method: 'get',
        path,
        tags: ['v2'],
        summary: `Statistics (Triton's extension) of ${path.includes('{version}') ? 'one version' : path.includes('{model}') ? "a model's loaded versions" : 'every loaded version'}`,
        request: pathParams(path),
        responses: {
          200: {
            description: 'Counts and cumulative times',
            content: { 'application/json': { schema: ModelStatsSchema } },
          },
          400: errorResponse('Malformed version'),
          404: errorResponse('Model or version not loaded'),
        },
      }),
      (c) => {
        const name = c.req.param('model');
        const version = parseVersion(c.req.param('version'));
        const versions = repository.servedVersions(name).filter((v) => version === undefined || v.version === version);
        if (name !== undefined && versions.length === 0)
          throw new HttpError(
            404,
            'model_not_found',
            `model '${name.slice(0, 100)}'${version === undefined ? '' : ` version ${version}`} is not loaded`,
          );
        return c.json({ model_stats: versions.map(tritonStats) });
      },
    );
  }
  return app;
}
