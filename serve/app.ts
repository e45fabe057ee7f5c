/**
 * The inference server (Hono): middleware for logging, metrics, origin checks and the one body limit,
 * then one route module per resource, mounted with `app.route()`:
 *   routes/predict.ts     /predict — digits from whatever the client has
 *   routes/v2.ts          the Open Inference Protocol v2 (KServe/Triton), transparent
 *   routes/stats.ts       Triton's statistics extension
 *   routes/repository.ts  Triton's model repository extension (index, load, unload)
 *   routes/upload.ts      PUT /api/models/{model}/versions (serve --allow-upload)
 *   routes/models.ts      /api/models and the served model files
 *   routes/metrics.ts     /metrics
 *   routes/mnist.ts       /api/mnist — MNIST for training in the browser
 *   routes/web.ts         /docs (offline Swagger UI) and the web demo
 * Each route is a `createRoute` constant served by `app.openapi`: the library validates its path and query
 * parameters (answered in our words by openapi.ts's defaultHook), a route middleware reads its body within
 * the limit (route-body.ts), and the OpenAPI 3.1 document at /openapi.json is generated from the same routes.
 *
 * @example
 * const app = createApp({ repository, metrics });
 * serve({ fetch: app.fetch, port: 8080 });
 */
import type { HttpBindings } from '@hono/node-server';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { PRODUCER_VERSION } from '../onnx/builder.ts';
import { arrivedWhileStopping } from './arrivals-at-stop.ts';
import { BatchShapeError, DroppedRequestError, QueueFullError } from './batcher.ts';
import { DEFAULT_MAX_BODY_BYTES, isEncoded } from './body.ts';
import { BODY_BUDGET_DEFAULTS, BodyBudget, type BodyBudgetLimits, OneAtATime, remoteAddress } from './body-budget.ts';
import { clientGone } from './client-gone.ts';
import { fromAnotherOrigin } from './cross-origin.ts';
import { errorBody, escapeForLog, HttpError, publicMessage } from './errors.ts';
import { NonFiniteOutputError } from './inference.ts';
import { LARGE_RESPONSE_DEFAULTS, type LargeResponseLimits, LargeResponses, writeTimeout } from './large-responses.ts';
import type { Metrics } from './metrics.ts';
import type { ModelControlAccess } from './model-control-access.ts';
import { refuseInvalid } from './openapi.ts';
import type { ModelRepository } from './repository.ts';
import { registerBodySchemas } from './route-body.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { mnistRoutes } from './routes/mnist.ts';
import { modelRoutes } from './routes/models.ts';
import { predictRoutes } from './routes/predict.ts';
import { repositoryRoutes } from './routes/repository.ts';
import { statsRoutes } from './routes/stats.ts';
import { UPLOAD_PATH, type UploadSettings } from './routes/upload.ts';
import { v2Routes } from './routes/v2.ts';
import { webRoutes } from './routes/web.ts';
import { ModelFailedError } from './runner/model-runner.ts';
import { registerTritonMetrics } from './triton-metrics.ts';
import {
  offerCheck,
  UNREAD_ANSWER_DEFAULTS,
  type UnreadAnswerLimits,
  UnreadAnswers,
  UnreadAnswersError,
} from './unread-answers.ts';

export interface AppOptions {
  repository: ModelRepository;
  metrics: Metrics;
  /** The one body limit of every route, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Allow cross-origin requests (off: a POST from another origin is refused with 403). */
  cors?: boolean;
  /** The built web demo to serve at / (a page saying how to build it while it is missing). */
  webRoot?: string;
  /** Write timeout and concurrency cap of large bodies (default: LARGE_RESPONSE_DEFAULTS, 30 s and 16). */
  largeResponses?: Partial<LargeResponseLimits>;
  /** Memory for request bodies being read (default BODY_BUDGET_DEFAULTS). */
  bodyBudget?: Partial<BodyBudgetLimits>;
  /** Per-request log lines (control characters escaped). */
  log?: (line: string) => void;
  /** Who may load and unload models (default: anyone on this machine, no key). */
  modelControl?: ModelControlAccess;
  /** Publishing models over HTTP (serve --allow-upload): off when undefined. */
  uploads?: UploadSettings;
  /** Unsent inference answers a client, and all clients, may hold (default UNREAD_ANSWER_DEFAULTS). */
  unreadAnswers?: Partial<UnreadAnswerLimits>;
}

export const SERVER_NAME = 'mnist-onnx-cnn';
/** Routes that run a model: /predict[/…] and v2's …/infer. */
const INFERENCE_PATH = /^\/predict(?:\/|$)|^\/v2\/models\/.+\/infer$/;
/** …and the repository index, whose answer grows with the repository (megabytes for thousands of models). */
const INDEX_PATH = /^\/v2\/repository\/index$/;

/** Seconds a client over its unread-answers budget is asked to wait. */
const UNREAD_RETRY_AFTER_S = 5;

/** The 503 of a client over its unread-answers budget (unread-answers.ts), saying why. */
const unreadRefusal = (c: Context, reason: string) =>
  c.json(errorBody('unread_answers', reason, c.req.path), 503, { 'Retry-After': String(UNREAD_RETRY_AFTER_S) });

/** Status recorded for requests whose client went away before the answer (nginx's convention). */
const CLIENT_CLOSED = 499;

export function createApp(options: AppOptions): OpenAPIHono {
  const { repository, metrics } = options;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const serverVersion = PRODUCER_VERSION;
  const limits = { ...LARGE_RESPONSE_DEFAULTS, ...options.largeResponses };
  const largeResponses = new LargeResponses(limits.maxConcurrent);
  // A path or query parameter that fails its schema is answered in our words (openapi.ts).
  const app = new OpenAPIHono({ defaultHook: refuseInvalid });
  registerTritonMetrics(metrics.registry, () => repository.servedVersions());

  app.use('*', async (c, next) => {
    const start = performance.now();
    await next();
    const status = clientGone(c) ? CLIENT_CLOSED : c.res.status;
    const route = c.req.routePath || 'unmatched';
    metrics.requests.inc({ route, method: c.req.method, status: String(status) });
    metrics.latency.observe({ route }, (performance.now() - start) / 1000);
    options.log?.(
      `${c.req.method} ${escapeForLog(c.req.path).slice(0, 200)} ${status} ${(performance.now() - start).toFixed(1)}ms`,
    );
  });
  // A stopping server takes no new inference: what arrived before still runs (server.ts close()), even when its
  // turn comes after (pipelined); what arrives now — on a connection still open — is answered at once, before
  // its body is read.
  app.use('*', async (c, next) => {
    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    const late = incoming ? arrivedWhileStopping(incoming) : repository.stopping;
    if (late && INFERENCE_PATH.test(c.req.path))
      return c.json(errorBody('shutting_down', 'the server is shutting down', c.req.path), 503, {
        Connection: 'close',
      });
    await next();
    // An answer to a request that came after the server began to stop closes its connection: kept alive, a
    // client asking every 200 ms held it for the whole exit timeout with nothing left to drain (a re-check).
    // (Requests that came before, pipelined behind it, are answered first.)
    if (late) c.res.headers.set('Connection', 'close');
  });
  // Node's parser takes any transfer coding before a final "chunked" and hands on the chunked body still
  // coded (an outside attack's "gzip, chunked" body reached the routes gzipped). Not one we decode: 501, as
  // HTTP/1.1 asks of a coding the server does not understand; the body is never read, so the connection closes.
  app.use('*', async (c, next) => {
    const codings = (c.req.header('transfer-encoding') ?? '')
      .toLowerCase()
      .split(',')
      .map((t) => t.trim());
    if (codings.some((t) => t !== '' && t !== 'chunked'))
      return c.json(
        errorBody('unsupported_transfer_coding', 'the only Transfer-Encoding supported is chunked', c.req.path),
        501,
        { Connection: 'close' },
      );
    await next();
  });
  app.use('*', writeTimeout(limits.writeTimeoutMs));
  // Inference and index answers wait for their clients within a budget of unsent bytes (unread-answers.ts).
  const unread = new UnreadAnswers({ ...UNREAD_ANSWER_DEFAULTS, ...options.unreadAnswers });
  app.use('*', async (c, next) => {
    const env = c.env as Partial<HttpBindings> | undefined;
    const socket = env?.incoming?.socket;
    if (!socket || !(INFERENCE_PATH.test(c.req.path) || INDEX_PATH.test(c.req.path))) return next();
    const address = remoteAddress(c);
    unread.track(socket, address);
    const before = unread.refusal(address);
    if (before) return unreadRefusal(c, before);
    offerCheck(c, { refusal: () => unread.refusal(address), reserve: (bytes) => unread.reserve(address, bytes) });
    await next();
    const after = c.res.ok ? unread.refusal(address) : undefined;
    if (after) c.res = unreadRefusal(c, after);
  });
  if (options.cors) {
    app.use('*', cors());
  } else {
    // A web page on another origin can POST images without a CORS preflight (multipart, text/plain);
    // browsers say where a request comes from, so refuse those unless --cors allows them.
    app.use('*', async (c, next) => {
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && fromAnotherOrigin(c))
        throw new HttpError(403, 'cross_origin', 'cross-origin requests are refused (start the server with --cors)');
      await next();
    });
  }
  // Every body reader checks `limit` after reading (so the client gets a clean 413 it can read); this
  // middleware only bounds memory, cutting off a body past twice the limit while it streams in. Bodies
  // hold memory within a byte budget (body-budget.ts), so memory for bodies stays bounded too.
  const bodyBudget = new BodyBudget({ ...BODY_BUDGET_DEFAULTS, ...options.bodyBudget }, (bytes, waiting) => {
    metrics.bodyBytes.set(bytes);
    metrics.bodiesWaiting.set(waiting);
  });
  // Model uploads (--allow-upload) have their own, larger limit, and one upload's worth of budget.
  const uploads = options.uploads;
  const uploadBudget = uploads
    ? new BodyBudget({ freeBytes: 0, total: uploads.maxBytes * 2, perClient: uploads.maxBytes * 2 }, (bytes) =>
        metrics.uploadBytes.set(bytes),
      )
    : bodyBudget;
  const oneUpload = new OneAtATime();
  const isUpload = (c: Context) => uploads !== undefined && UPLOAD_PATH.test(c.req.path);
  // Uploads are read one at a time, but a body that says it is small (a load call without a file) never
  // waits behind one: a stalled upload held a plain load 29.6 s in an outside attack. Not a compressed one:
  // 50 KB of gzip carried a 16 MB model past the lock in the next.
  const saysSmall = (c: Context) =>
    Number(c.req.header('content-length') ?? Number.NaN) <= BODY_BUDGET_DEFAULTS.freeBytes &&
    !isEncoded(c.req.header('content-encoding'));
  app.use('*', async (c, next) => {
    c.set('bodyBudget' as never, (isUpload(c) ? uploadBudget : bodyBudget) as never);
    if (isUpload(c) && !saysSmall(c)) c.set('bodyLock' as never, oneUpload as never);
    await next();
  });
  // Refused before the body was read (from Content-Length, or cut off midway): the rest of it can't be
  // skipped in time to keep the connection, so it closes once the answer is out (lingering-close.ts).
  const tooLarge = (bytes: number) => (c: Context) =>
    c.json(errorBody('payload_too_large', `request body exceeds ${bytes} bytes`, c.req.path), 413, {
      Connection: 'close',
    });
  const bodyCap = bodyLimit({ maxSize: limit * 2, onError: tooLarge(limit) });
  const uploadCap = uploads
    ? bodyLimit({ maxSize: uploads.maxBytes * 2, onError: tooLarge(uploads.maxBytes) })
    : bodyCap;
  app.use('*', (c, next) => (isUpload(c) ? uploadCap(c, next) : bodyCap(c, next)));
  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json(errorBody(error.code, error.message, c.req.path), error.status);
    // The model misbehaved (over its run budget, crashed, wrong rows): the server is fine, this model is not.
    if (error instanceof ModelFailedError || error instanceof BatchShapeError) {
      metrics.modelFailures.inc();
      return c.json(errorBody('model_failed', publicMessage(error.message), c.req.path), 503);
    }
    if (error instanceof NonFiniteOutputError) {
      metrics.nonFiniteOutputs.inc();
      return c.json(errorBody('non_finite_output', error.message, c.req.path), 422);
    }
    if (error instanceof UnreadAnswersError) return unreadRefusal(c, error.message);
    // A full queue or a stopping server: come back (Triton answers both as unavailable).
    if (error instanceof QueueFullError)
      return c.json(errorBody('queue_full', error.message, c.req.path), 503, { 'Retry-After': '1' });
    if (error instanceof DroppedRequestError && error.reason === 'shutting_down')
      return c.json(errorBody('shutting_down', error.message, c.req.path), 503, { Connection: 'close' });
    if (error instanceof DroppedRequestError) return c.body(null, CLIENT_CLOSED as 200); // nobody is there to read it
    if (clientGone(c)) return c.body(null, CLIENT_CLOSED as 200); // nobody reads it; counted as a client abort
    // Hono's own client errors (e.g. a malformed multipart boundary).
    if (error instanceof HTTPException && error.status < 500)
      return c.json(errorBody('bad_request', publicMessage(error.message || 'bad request'), c.req.path), error.status);
    options.log?.(
      `internal error on ${c.req.method} ${escapeForLog(c.req.path).slice(0, 200)}: ${publicMessage(String(error))}`,
    );
    if (process.env.DEBUG && error instanceof Error) options.log?.(error.stack ?? '');
    return c.json(errorBody('internal', 'internal server error', c.req.path), 500);
  });
  app.notFound((c) =>
    c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path.slice(0, 200)}`, c.req.path), 404),
  );

  const maxBodyBytes = limit;
  app.route('/', predictRoutes({ repository, maxBodyBytes }));
  // Before v2's /v2/models/{model}: 'stats' is the extension's path, not a model name (as in Triton).
  app.route('/', statsRoutes({ repository }));
  app.route('/', v2Routes({ repository, maxBodyBytes, serverName: SERVER_NAME, serverVersion }));
  app.route(
    '/',
    repositoryRoutes({ repository, maxBodyBytes, access: options.modelControl ?? { remote: false }, uploads }),
  );
  app.route('/', modelRoutes({ repository, largeResponses }));
  app.route('/', metricsRoutes({ metrics }));
  app.route('/', mnistRoutes({ largeResponses }));
  registerBodySchemas(app);
  // Built once, at the first request (every route is registered by then), not per request.
  let spec: string | undefined;
  app.get('/openapi.json', (c) => {
    spec ??= JSON.stringify(
      app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: {
          title: `${SERVER_NAME} inference server`,
          version: serverVersion,
          description: `Every request body is limited to ${limit} bytes. Errors are JSON: { "error": { "code", "message" } }.`,
        },
      }),
    );
    return c.body(spec, 200, { 'content-type': 'application/json' });
  });
  app.route('/', webRoutes({ webRoot: options.webRoot, specPath: '/openapi.json', largeResponses }));
  return app;
}
