/**
 * Request bodies of `app.openapi` routes. @hono/zod-openapi validates a JSON (or form) body whose schema is
 * a zod schema by reading `c.req.json()` — the whole body, past any limit — and answers in its own words
 * (and 415s content types our clients send), so no route hands it one. Instead a route middleware reads
 * the body with body.ts's bounded reader, checks it, and gives the handler the result as `c.var.body`;
 * the spec names the schema by reference (`schemaRef`, a component createApp registers), so /openapi.json
 * describes the body all the same.
 * Routes that take raw bytes read them the same way; nothing else touches a body.
 */
import type { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { zodMessage } from './body.ts';
import { HttpError } from './errors.ts';
import { ControlRequestSchema, IndexRequestSchema, InferRequestSchema, PredictJsonSchema } from './schemas.ts';

/** The env a body middleware gives its route's handler: the body, read and checked. */
export interface BodyEnv<T> {
  Variables: { body: T };
}

/** A route middleware setting `c.var.body` to what `read` made of the body (its errors are the answer). */
export const readsBody =
  <T>(read: (c: Context) => Promise<T>): MiddlewareHandler<BodyEnv<T>> =>
  async (c, next) => {
    c.set('body', await read(c));
    await next();
  };

/** Route middleware run in this order, as a tuple: the library merges their envs only from a tuple's types. */
export const inOrder = <M extends MiddlewareHandler[]>(...middleware: M): M => middleware;

/** `value` (a parsed body) checked by `schema`; refused as 400 invalid_request naming the first issue, unless `refuse` says otherwise. */
export function checked<S extends z.ZodType>(
  schema: S,
  value: unknown,
  refuse: (error: z.ZodError) => HttpError = (error) => new HttpError(400, 'invalid_request', zodMessage(error)),
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw refuse(parsed.error);
  return parsed.data;
}

/** The JSON body schemas, by their component name in the spec. */
const BODY_SCHEMAS = {
  PredictRequest: PredictJsonSchema,
  InferenceRequest: InferRequestSchema,
  RepositoryIndexRequest: IndexRequestSchema,
  ModelControlRequest: ControlRequestSchema,
};

/** A JSON body's schema in the spec: a plain reference, so the library adds no validator that reads the body. */
export const schemaRef = (name: keyof typeof BODY_SCHEMAS) => ({ $ref: `#/components/schemas/${name}` });

/** Put the body schemas in `app`'s spec, where `schemaRef` points. */
export function registerBodySchemas(app: OpenAPIHono): void {
  for (const [name, schema] of Object.entries(BODY_SCHEMAS)) app.openAPIRegistry.register(name, schema);
}
