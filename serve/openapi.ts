/**
 * Routes are declared once, as OpenAPI route configs: `mount` registers each in the spec (/openapi.json,
 * OpenAPI 3.1) and serves it with a plain handler that reads and checks its own body — so limits, depth
 * checks and error wording are ours, and the spec can't drift from the routes.
 */
import { type OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ErrorSchema } from './schemas.ts';

export type RouteHandler = (c: Context) => Response | Promise<Response>;

/** `{model}` (OpenAPI) → `:model` (Hono). */
const honoPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

export function mount(app: OpenAPIHono, route: RouteConfig, handler: RouteHandler): void {
  app.openAPIRegistry.registerPath(route);
  app.on(route.method.toUpperCase(), honoPath(route.path), handler);
}

/** An OpenAPI response entry for our `{ error }` JSON bodies. */
export const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
});

/** The 4xx answers every route can give. */
export const commonErrors = {
  400: errorResponse('Bad input'),
  403: errorResponse('Cross-origin request refused (start the server with --cors to allow)'),
  413: errorResponse('Request body over the limit'),
};

const modelParam = z
  .string()
  .openapi({ param: { name: 'model', in: 'path' }, example: 'cnn', description: 'Model name' });
const versionParam = z
  .string()
  .regex(/^[1-9][0-9]{0,8}$/)
  .openapi({ param: { name: 'version', in: 'path' }, example: '1', description: 'Model version' });

/** Path parameters for a path with `{model}` and maybe `{version}`. */
export function pathParams(path: string) {
  if (!path.includes('{model}')) return {};
  return {
    params: path.includes('{version}')
      ? z.object({ model: modelParam, version: versionParam })
      : z.object({ model: modelParam }),
  };
}
