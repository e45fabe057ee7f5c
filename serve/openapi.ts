/**
 * The pieces route modules declare their routes with (`createRoute`, served by `app.openapi`): error
 * responses, path parameters that say how they are refused, and the defaultHook that answers a failed
 * parameter in the project's words. Bodies are not validated here: see route-body.ts.
 */
import { z } from '@hono/zod-openapi';
import { issuesInOneLine } from '../core/zod-issues.ts';
import { VERSION_PATTERN } from '../node/repository.ts';
import { HttpError } from './errors.ts';
import { versionRefusal } from './routes/lookup.ts';
import { ErrorSchema, ProtocolErrorSchema } from './schemas.ts';

/** An OpenAPI response entry for our `{ error }` JSON bodies. */
export const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
});

/** The same on the Open Inference Protocol's routes (/v2), whose errors are `{ "error": "<message>" }` (errors.ts). */
export const protocolErrorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ProtocolErrorSchema } },
});

const commonErrorsAs = <Entry>(response: (description: string) => Entry) => ({
  400: response('Bad input'),
  403: response('Cross-origin request refused (start the server with --cors to allow)'),
  413: response('Request body over the limit'),
  415: response('A Content-Encoding other than gzip, deflate or br'),
});

/** The 4xx answers every route can give. */
export const commonErrors = commonErrorsAs(errorResponse);
/** …and every /v2 route, in the protocol's shape. */
export const protocolCommonErrors = commonErrorsAs(protocolErrorResponse);

/** How a failed check is answered: carried by the zod issue (`params`), read by `refuseInvalid`. */
export interface Refusal {
  status: 400 | 404;
  code: string;
}

/**
 * A string check refused as `status`/`code` with `message(input)` (zod's own wording never reaches a
 * client). Refinements keep the spec's `pattern`/`enum` out, so the caller states those with `.openapi`.
 */
export const refusing = <T extends string>(
  test: (value: string) => value is T,
  { status, code, message }: Refusal & { message: (input: string) => string },
) =>
  z
    .string()
    .refine(test, { params: { status, code } satisfies Refusal, error: (issue) => message(String(issue.input)) });

const modelParam = z
  .string()
  .openapi({ param: { name: 'model', in: 'path' }, example: 'cnn', description: 'Model name' });
const isVersion = (raw: string): raw is string => VERSION_PATTERN.test(raw);
/** A version path segment, as the number it names. */
const versionParam = refusing(isVersion, versionRefusal)
  .transform(Number)
  .openapi({
    param: { name: 'version', in: 'path' },
    example: '1',
    description: 'Model version',
    pattern: VERSION_PATTERN.source,
  });

const modelPath = z.object({ model: modelParam });
const versionPath = z.object({ model: modelParam, version: versionParam });
/** What a model path's parameters hold: the model, and the version when the path names one. */
export type ModelPathParams = z.ZodObject<{ model: typeof modelParam; version: z.ZodOptional<typeof versionParam> }>;

/** The path parameters of a path with `{model}` and maybe `{version}` (each path declares only its own). */
export function modelParams(path: string): { params: ModelPathParams } {
  if (!path.includes('{model}')) throw new Error(`${path} names no model`);
  return { params: (path.includes('{version}') ? versionPath : modelPath) as unknown as ModelPathParams };
}

/**
 * The app's defaultHook: a parameter that fails its schema is answered with the status, code and message
 * its check carries (`refusing`), or 400 invalid_request naming the first issue. Bodies never come here.
 */
export function refuseInvalid(result: { success: boolean; error?: z.ZodError }): void {
  if (result.success || !result.error) return;
  const issue = result.error.issues[0];
  const refusal = issue?.code === 'custom' ? (issue.params as Refusal | undefined) : undefined;
  if (issue && refusal) throw new HttpError(refusal.status, refusal.code, issue.message);
  throw new HttpError(400, 'invalid_request', issuesInOneLine(result.error, 'parameters', 1));
}
