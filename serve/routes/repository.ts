/**
 * Triton's model repository extension: POST /v2/repository/index lists every model version with its state
 * (READY, UNAVAILABLE with why, LOADING); POST /v2/repository/models/{model}/load and /unload change what
 * is served in explicit model control mode, behind model-control-access.ts. Unloading lets requests in
 * flight finish on the version they hold. With --allow-upload, load takes a model file (Triton's file
 * override), and upload.ts's PUT takes one as raw bytes.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { readJsonObject } from '../body.ts';
import { HttpError } from '../errors.ts';
import { type ModelControlAccess, mayControlModels } from '../model-control-access.ts';
import { modelParams, protocolCommonErrors, protocolErrorResponse } from '../openapi.ts';
import type { IndexEntry, ModelRepository } from '../repository.ts';
import { checked, inOrder, readsBody, schemaRef } from '../route-body.ts';
import { ControlRequestSchema, IndexRequestSchema, RepositoryIndexSchema } from '../schemas.ts';
import { refuseIfUnread, reserveAnswer } from '../unread-answers.ts';
import { controlling, protocolControlBusyResponse } from './controlling.ts';
import { type UploadSettings, uploadBodyBytes, uploadRoutes } from './upload.ts';

export interface RepositoryRouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  access: ModelControlAccess;
  /** Publishing models (serve --allow-upload); off when undefined. */
  uploads?: UploadSettings;
}

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

/**
 * The size of an index's answer, near enough: each entry's strings and `perEntry` bytes of keys, quotes or
 * tags. It grows with the repository: thousands of models answer megabytes, which clients that never read
 * left in the server's memory (+0.6 GB over gRPC, an outside attack), so it is held in the answer budgets.
 */
export const indexAnswerBytes = (entries: IndexEntry[], perEntry: number) =>
  entries.reduce(
    (sum, m) =>
      sum + perEntry + Buffer.byteLength(m.name) + m.version.length + m.state.length + Buffer.byteLength(m.reason),
    0,
  );

/** Refused in the schema's own words, unprefixed: these bodies' messages predate their schemas. */
const inOwnWords = (error: z.ZodError) =>
  new HttpError(400, 'invalid_request', error.issues[0]?.message ?? 'invalid request');

const indexRoute = (maxBodyBytes: number) =>
  createRoute({
    method: 'post',
    path: '/v2/repository/index',
    tags: ['v2'],
    summary: 'Every model version in the repository, with its state and why it is not served',
    middleware: readsBody(async (c) => checked(IndexRequestSchema, await readJsonObject(c, maxBodyBytes), inOwnWords)),
    request: {
      body: { content: { 'application/json': { schema: schemaRef('RepositoryIndexRequest') } }, required: false },
    },
    responses: {
      200: { description: 'The index', content: { 'application/json': { schema: RepositoryIndexSchema } } },
      ...protocolCommonErrors,
      503: protocolErrorResponse(
        "The client's answers are still unread past its budget (unread_answers, Retry-After), or the server is stopping",
      ),
    },
  });

const controlRoute = (action: 'load' | 'unload', access: ModelControlAccess, bodyBytes: number) => {
  const path = `/v2/repository/models/{model}/${action}`;
  return createRoute({
    method: 'post',
    path,
    tags: ['v2'],
    summary:
      action === 'load'
        ? 'Load (or reload) every version of a model (explicit model control mode)'
        : 'Stop serving a model; requests in flight finish (explicit model control mode)',
    // Who asks is checked before the body (which may carry a model file) is read.
    middleware: inOrder(
      mayControlModels(access),
      readsBody(async (c) => checked(ControlRequestSchema, await readJsonObject(c, bodyBytes), inOwnWords)),
    ),
    request: {
      ...modelParams(path),
      body: { content: { 'application/json': { schema: schemaRef('ModelControlRequest') } }, required: false },
    },
    responses: {
      200: { description: 'Done', content: { 'application/json': { schema: z.object({}) } } },
      ...protocolCommonErrors,
      400: protocolErrorResponse('Not in explicit mode, or the model did not load (with why)'),
      ...(action === 'load'
        ? { 409: protocolErrorResponse('A file override names a version that exists already') }
        : {}),
      503: protocolControlBusyResponse,
      401: protocolErrorResponse('Missing or wrong API key'),
      403: protocolErrorResponse(
        'Model control is off (the server listens on the network without an API key), or a file override without --allow-upload',
      ),
      404: protocolErrorResponse('No such model in the repository'),
    },
  });
};

export function repositoryRoutes({ repository, maxBodyBytes, access, uploads }: RepositoryRouteOptions): OpenAPIHono {
  // The load route's body may carry a model file (--allow-upload): its limit is the upload's, base64 and all.
  const loadBodyBytes = uploads ? uploadBodyBytes(uploads.maxBytes) : maxBodyBytes;
  const app = new OpenAPIHono();
  app.openapi(indexRoute(maxBodyBytes), (c) => {
    const { ready } = c.var.body;
    refuseIfUnread(c); // before the index is built
    const entries = repository.index().filter((e) => !ready || e.state === 'READY');
    // Held as an inference answer is (unread-answers.ts): JSON's keys and quotes are ~50 bytes an entry.
    const release = reserveAnswer(c, indexAnswerBytes(entries, 50));
    try {
      return c.json(entries, 200);
    } finally {
      release(); // from here its bytes count as written and unsent
    }
  });
  app.openapi(controlRoute('unload', access, maxBodyBytes), async (c) => {
    // tritonclient's unload_model always sends unload_dependents (ensembles' parts): with no ensembles, a no-op.
    const { unload_dependents: dependents, ...other } = c.var.body.parameters ?? {};
    if (Object.keys(other).length > 0)
      throw new HttpError(400, 'unsupported_parameter', "unload takes no parameters here but 'unload_dependents'");
    if (dependents !== undefined && typeof dependents !== 'boolean')
      throw new HttpError(400, 'invalid_request', 'unload_dependents must be true or false');
    await controlling(
      () => repository.unload(c.req.valid('param').model),
      () => repository.stopping,
    );
    return c.json({}, 200);
  });
  app.openapi(controlRoute('load', access, loadBodyBytes), async (c) => {
    const name = c.req.valid('param').model;
    const file = fileOverride(c.var.body.parameters ?? {}, uploads);
    await controlling(
      async () => {
        if (file) await repository.publish(name, file.version, file.bytes);
        else await repository.load(name);
      },
      () => repository.stopping,
    );
    return c.json({}, 200);
  });
  if (uploads) app.route('/', uploadRoutes(repository, access, uploads));
  return app;
}
