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
import { ModelControlError, ModelNotFoundError, type ModelRepository, VersionExistsError } from '../repository.ts';
import { ControlRequestSchema, IndexRequestSchema, RepositoryIndexSchema } from '../schemas.ts';

export interface RepositoryRouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  access: ModelControlAccess;
  /** Publishing models (serve --allow-upload); off when undefined. */
  uploads?: UploadSettings;
}

export interface UploadSettings {
  /** The largest model file taken, in bytes (its base64 in JSON may be a third more). */
  maxBytes: number;
}

/** The routes that take model files: Triton's load with file overrides, and a plain PUT of the bytes. */
export const UPLOAD_PATH = /^\/(v2\/repository\/models\/[^/]+\/load|api\/models\/[^/]+\/versions)$/;

/** Triton's file override for a model file: `file:<version>/model.onnx`. */
const FILE_OVERRIDE = /^file:([1-9][0-9]{0,8})\/model\.onnx$/;

/**
 * The model file a load request carries as a Triton file override, or undefined when it carries none.
 * Triton sends the model configuration beside it (`config`, JSON): it is accepted, and the repository's
 * config.pbtxt (if any) applies; any other parameter or file is refused.
 */
function fileOverride(
  parameters: Record<string, unknown>,
  uploads: UploadSettings | undefined,
): { version: number; bytes: Uint8Array } | undefined {
  const files = Object.keys(parameters).filter((k) => k.startsWith('file:'));
  if (files.length === 0) {
    if (Object.keys(parameters).length > 0)
      throw new HttpError(400, 'unsupported_parameter', 'load takes no parameters here but file overrides');
    return undefined;
  }
  if (!uploads)
    throw new HttpError(403, 'uploads_off', 'this server takes no model files: start it with --allow-upload');
  const other = Object.keys(parameters).find((k) => k !== 'config' && !FILE_OVERRIDE.test(k));
  if (other !== undefined || files.length !== 1)
    throw new HttpError(
      400,
      'unsupported_parameter',
      `one file override, 'file:<version>/model.onnx', and optionally 'config' are taken; got '${(other ?? files[1] ?? '').slice(0, 60)}'`,
    );
  const key = files[0] as string;
  const value = parameters[key];
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(value))
    throw new HttpError(400, 'invalid_base64', `${key.slice(0, 60)} must be the file's bytes in base64`);
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  if (bytes.length === 0) throw new HttpError(400, 'empty_file', 'the model file is empty');
  if (bytes.length > uploads.maxBytes)
    throw new HttpError(
      413,
      'payload_too_large',
      `the model file is ${bytes.length} bytes; the limit is ${uploads.maxBytes}`,
    );
  return { version: Number(FILE_OVERRIDE.exec(key)?.[1]), bytes };
}

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
    if (error instanceof VersionExistsError) throw new HttpError(409, 'version_exists', error.message.slice(0, 300));
    if (error instanceof ModelControlError) throw new HttpError(400, 'model_control', error.message.slice(0, 600));
    throw error;
  }
}

export function repositoryRoutes({ repository, maxBodyBytes, access, uploads }: RepositoryRouteOptions): OpenAPIHono {
  // The load route's body may carry a model file (--allow-upload): its limit is the upload's, base64 and all.
  const loadBodyBytes = uploads ? Math.ceil((uploads.maxBytes * 4) / 3) + 64 * 1024 : maxBodyBytes;
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
          ...(action === 'load' ? { 409: errorResponse('A file override names a version that exists already') } : {}),
          401: errorResponse('Missing or wrong API key'),
          403: errorResponse(
            'Model control is off (the server listens on the network without an API key), or a file override without --allow-upload',
          ),
          404: errorResponse('No such model in the repository'),
        },
      }),
      async (c) => {
        assertMayControlModels(c, access);
        const body = await optionalJson(c, action === 'load' ? loadBodyBytes : maxBodyBytes);
        const parameters = body.parameters ?? {};
        if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
          throw new HttpError(400, 'invalid_request', 'parameters must be an object');
        const name = c.req.param('model') as string;
        if (action === 'unload') {
          if (Object.keys(parameters).length > 0)
            throw new HttpError(400, 'unsupported_parameter', 'unload takes no parameters here');
          await controlling(() => repository.unload(name));
          return c.json({});
        }
        const file = fileOverride(parameters as Record<string, unknown>, uploads);
        await controlling(async () => {
          if (file) await repository.publish(name, file.version, file.bytes);
          else await repository.load(name);
        });
        return c.json({});
      },
    );
  }
  if (uploads) {
    const path = '/api/models/{model}/versions';
    mount(
      app,
      createRoute({
        method: 'put',
        path,
        tags: ['models'],
        summary: 'Publish a model.onnx as the next version of a model (serve --allow-upload)',
        request: {
          ...pathParams(path),
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
        },
      }),
      async (c) => {
        assertMayControlModels(c, access);
        const bytes = await readBody(c, uploads.maxBytes);
        if (bytes.length === 0) throw new HttpError(400, 'empty_file', 'the model file is empty');
        const name = c.req.param('model') as string;
        let version = 0;
        await controlling(async () => {
          version = await repository.publish(name, undefined, bytes);
        });
        return c.json({ model: name, version }, 201);
      },
    );
  }
  return app;
}
