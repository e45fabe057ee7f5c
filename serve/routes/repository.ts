/**
 * Triton's model repository extension: POST /v2/repository/index lists every model version with its state
 * (READY, UNAVAILABLE with why, LOADING); POST /v2/repository/models/{model}/load and /unload change what
 * is served in explicit model control mode, behind model-control-access.ts. Unloading lets requests in
 * flight finish on the version they hold.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { readBody } from '../body.ts';
import { HttpError } from '../errors.ts';
import { assertMayControlModels, type ModelControlAccess } from '../model-control-access.ts';
import { commonErrors, errorResponse, mount, pathParams } from '../openapi.ts';
import { ModelControlError, ModelNotFoundError, type ModelRepository } from '../repository.ts';
import { RepositoryIndexSchema } from '../schemas.ts';

export interface RepositoryRouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  access: ModelControlAccess;
}

const IndexRequestSchema = z
  .object({ ready: z.boolean().optional().openapi({ description: 'true: only versions that are READY' }) })
  .openapi('RepositoryIndexRequest');
const ControlRequestSchema = z
  .object({ parameters: z.record(z.string(), z.unknown()).optional() })
  .openapi('ModelControlRequest');

/** An optional JSON object body (Triton's clients send none, `{}`, or a few parameters). */
async function optionalJson(c: Context, limit: number): Promise<Record<string, unknown>> {
  const bytes = await readBody(c, limit);
  const text = new TextDecoder().decode(bytes).trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new HttpError(400, 'invalid_request', 'body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The repository's errors as 4xx answers. */
async function controlling(work: () => Promise<void> | void): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof ModelNotFoundError) throw new HttpError(404, 'model_not_found', error.message.slice(0, 300));
    if (error instanceof ModelControlError) throw new HttpError(400, 'model_control', error.message.slice(0, 600));
    throw error;
  }
}

export function repositoryRoutes({ repository, maxBodyBytes, access }: RepositoryRouteOptions): OpenAPIHono {
  const app = new OpenAPIHono();
  mount(
    app,
    createRoute({
      method: 'post',
      path: '/v2/repository/index',
      tags: ['v2'],
      summary: 'Every model version in the repository, with its state and why it is not served',
      request: { body: { content: { 'application/json': { schema: IndexRequestSchema } }, required: false } },
      responses: {
        200: { description: 'The index', content: { 'application/json': { schema: RepositoryIndexSchema } } },
        ...commonErrors,
      },
    }),
    async (c) => {
      const ready = (await optionalJson(c, maxBodyBytes)).ready;
      if (ready !== undefined && typeof ready !== 'boolean')
        throw new HttpError(400, 'invalid_request', 'ready must be true or false');
      return c.json(repository.index().filter((e) => !ready || e.state === 'READY'));
    },
  );
  for (const action of ['load', 'unload'] as const) {
    const path = `/v2/repository/models/{model}/${action}`;
    mount(
      app,
      createRoute({
        method: 'post',
        path,
        tags: ['v2'],
        summary:
          action === 'load'
            ? 'Load (or reload) every version of a model (explicit model control mode)'
            : 'Stop serving a model; requests in flight finish (explicit model control mode)',
        request: {
          ...pathParams(path),
          body: { content: { 'application/json': { schema: ControlRequestSchema } }, required: false },
        },
        responses: {
          200: { description: 'Done', content: { 'application/json': { schema: z.object({}) } } },
          ...commonErrors,
          400: errorResponse('Not in explicit mode, or the model did not load (with why)'),
          401: errorResponse('Missing or wrong API key'),
          403: errorResponse('Model control is off: the server listens on the network without an API key'),
          404: errorResponse('No such model in the repository'),
        },
      }),
      async (c) => {
        assertMayControlModels(c, access);
        const body = await optionalJson(c, maxBodyBytes);
        const parameters = body.parameters;
        if (parameters !== undefined && (typeof parameters !== 'object' || Object.keys(parameters ?? {}).length > 0))
          throw new HttpError(400, 'unsupported_parameter', `${action} takes no parameters here (no config overrides)`);
        const name = c.req.param('model') as string;
        await controlling(() => (action === 'load' ? repository.load(name) : repository.unload(name)));
        return c.json({});
      },
    );
  }
  return app;
}
