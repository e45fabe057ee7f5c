/**
 * Start the inference server: check the device, listen (a busy port fails before any model loads), load
 * the model repository and keep watching it, and shut down gracefully (stop accepting, let in-flight
 * requests finish, release the sessions). Timeouts and a connection cap bound slow or numerous clients.
 *
 * @example
 * const server = await startServer({ models: 'models', port: 0 });
 * console.log(server.url); await server.close();
 */
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import type { NodeDevice as Device } from '../core/ort-runtime.ts';
import { probeDevice } from '../node/device-probe.ts';
import { PRODUCER_VERSION } from '../onnx/builder.ts';
import { createApp, SERVER_NAME } from './app.ts';
import { noteArrivalsAtStop } from './arrivals-at-stop.ts';
import { DEFAULT_MAX_BODY_BYTES } from './body.ts';
import type { BodyBudgetLimits } from './body-budget.ts';
import { answerClientErrors } from './client-errors.ts';
import { inTurnPerConnection } from './connection-turns.ts';
import { CONNECTION_DEFAULTS, type ConnectionGuard, guardConnections, LISTEN_BACKLOG } from './connections.ts';
import { closingRefusal, targetPath } from './errors.ts';
import { startGrpc } from './grpc/server.ts';
import type { UnsentAnswerLimits } from './grpc/unsent-answers.ts';
import type { LargeResponseLimits } from './large-responses.ts';
import { lingerOnClose } from './lingering-close.ts';
import { createMetrics } from './metrics.ts';
import { isLoopback } from './model-control-access.ts';
import { noteConnection } from './own-turn.ts';
import { type ModelControlMode, ModelRepository, SERVE_DEFAULTS } from './repository.ts';
import { requestListener } from './request-listener.ts';
import { UPLOAD_PATH, type UploadSettings, uploadBodyBytes } from './routes/upload.ts';
import { BEGUN_REQUEST_GRACE_MS, closesOnce, listenerQuiet } from './stopping.ts';
import type { UnreadAnswerLimits } from './unread-answers.ts';

export interface ServerOptions {
  models: string;
  port?: number;
  host?: string;
  device?: Device;
  threads?: number;
  maxBatch?: number;
  batchDelayMs?: number;
  /** Longest a model's load and contract check may take (ms); see SERVE_DEFAULTS. */
  loadBudgetMs?: number;
  /** Longest one inference run may take (ms); a version over it is quarantined. */
  runBudgetMs?: number;
  /** Versions served at once, each in its own runner process (default 32). */
  maxLoadedVersions?: number;
  /** Images waiting for one version's runs before requests are refused (default 2048). */
  maxQueuedImages?: number;
  /** On close, how long requests already queued still run before they are answered 503 (default EXIT_TIMEOUT_MS). */
  exitTimeoutMs?: number;
  /**
   * Aborted when the caller wants to stop (a signal): start-up returns without waiting for the first scan's
   * loads to end, so the caller's close() can begin at once. The ports listen, and readiness can be 200, as
   * soon as a model is served; a SIGTERM in that window killed the process before its handler was set.
   */
  stopping?: AbortSignal;
  cors?: boolean;
  maxBodyBytes?: number;
  webRoot?: string;
  /** Rescan interval of the model repository in ms. */
  watchIntervalMs?: number;
  log?: (line: string) => void;
  /** Per-request log lines (off by default in tests). */
  requestLog?: boolean;
  /** Most open connections at once (default 1024); the oldest idle one is closed to make room. */
  maxConnections?: number;
  /** Most open connections from one remote address (default 256; raise it behind a proxy). */
  maxConnectionsPerClient?: number;
  /** Clients that stop reading big bodies, and how many big bodies at once (default LARGE_RESPONSE_DEFAULTS). */
  largeResponses?: Partial<LargeResponseLimits>;
  /** Memory for request bodies being read (default BODY_BUDGET_DEFAULTS). */
  bodyBudget?: Partial<BodyBudgetLimits>;
  /** Unsent inference answers one client, and all, may hold (default UNREAD_ANSWER_DEFAULTS). */
  unreadAnswers?: Partial<UnreadAnswerLimits>;
  /** Slow-client bounds (default HTTP_TIMEOUTS). */
  timeouts?: Partial<typeof HTTP_TIMEOUTS>;
  /** Triton's --model-control-mode: poll (default), explicit or none. */
  modelControlMode?: ModelControlMode;
  /** explicit mode: models to load at start. */
  loadModels?: string[];
  /** Key for loading and unloading models (required for them when listening beyond loopback). */
  apiKey?: string;
  /** Publishing models over HTTP (Triton's load with a file override, PUT /api/models/<m>/versions); off when undefined. */
  uploads?: UploadSettings;
  /** Serve the v2 protocol over gRPC too, on this port (0: any free port); none: no gRPC. */
  grpcPort?: number;
  /** gRPC answers not yet taken by their clients (default UNSENT_ANSWER_DEFAULTS). */
  grpcUnsentAnswers?: Partial<UnsentAnswerLimits>;
  /** gRPC request bytes arriving, before their messages are whole (default ARRIVING_BYTES_DEFAULTS). */
  arrivingGrpcBytes?: Partial<BodyBudgetLimits>;
}

export interface RunningServer {
  url: string;
  port: number;
  repository: ModelRepository;
  connections: ConnectionGuard;
  /** The gRPC port, when grpcPort was given. */
  grpcPort?: number;
  close(): Promise<void>;
}

/** Bounds for slow clients: all headers within 10 s, the whole request within 30 s (each to within a second). */
export const HTTP_TIMEOUTS = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 };
const CHECK_INTERVAL_MS = 250;

/** Distinct model names a metric may carry; later ones share 'other' (uploads can make any number of names). */
const MAX_MODEL_LABELS = 256;

/** A label function that passes the first `max` distinct values through and maps the rest to 'other'. */
function boundedLabels(max: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}

export class PortError extends Error {
  override name = 'PortError';
}

function portError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  if (error.code === 'EADDRINUSE')
    return new PortError(`port ${port} on ${host} is already in use (another server?): choose another with --port`);
  if (error.code === 'EACCES')
    return new PortError(`no permission to listen on port ${port} (ports below 1024 need privileges): use --port`);
  if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND')
    return new PortError(`cannot listen on ${host}: not an address of this machine`);
  return new PortError(`cannot listen on ${host}:${port} (${error.code ?? error.message})`);
}

/**
 * Fail now, in our words, if `host:port` can't be listened on — before minutes of training or loading
 * (`npm start` checks before it trains). Port 0 always passes.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', (error) => reject(portError(error, host, port)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? (() => {});
  const device = options.device ?? SERVE_DEFAULTS.device;
  // A missing device fails here with its reason (DeviceUnavailableError); 'auto' is decided, and announced, once.
  const provider = device === 'cpu' ? 'cpu' : await probeDevice(device, log);
  const metrics = createMetrics();
  const modelLabel = boundedLabels(MAX_MODEL_LABELS);
  const repository = new ModelRepository(options.models, {
    device: provider,
    threads: options.threads,
    maxBatch: options.maxBatch,
    batchDelayMs: options.batchDelayMs,
    loadBudgetMs: options.loadBudgetMs,
    runBudgetMs: options.runBudgetMs,
    maxLoadedVersions: options.maxLoadedVersions,
    maxQueuedImages: options.maxQueuedImages,
    controlMode: options.modelControlMode,
    loadModels: options.loadModels,
    log,
    onBatch: (model, size) => metrics.batchSize.observe({ model: modelLabel(model) }, size),
    onLoadFailure: (model) => metrics.loadFailures.inc({ model: modelLabel(model) }),
    onScanError: (cause) => metrics.scanErrors.inc({ cause }),
  });
  // Who may load and unload models, over HTTP and gRPC alike (model-control-access.ts).
  const access = { apiKey: options.apiKey, remote: !isLoopback(options.host ?? '127.0.0.1') };
  const app = createApp({
    repository,
    metrics,
    cors: options.cors,
    maxBodyBytes: options.maxBodyBytes,
    webRoot: options.webRoot,
    largeResponses: options.largeResponses,
    bodyBudget: options.bodyBudget,
    unreadAnswers: options.unreadAnswers,
    log: options.requestLog ? log : undefined,
    modelControl: access,
    uploads: options.uploads,
  });
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  const timeouts = { ...HTTP_TIMEOUTS, ...options.timeouts };
  const server = createHttpServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node checks those timeouts every 30 s by default, so a 10 s limit held only to ~40 s.
      connectionsCheckingInterval: CHECK_INTERVAL_MS,
      // A request without Host is refused by requestListener, in JSON, rather than by Node with an empty 400.
      requireHostHeader: false,
    },
    // Pipelined requests one at a time per connection (connection-turns.ts).
    inTurnPerConnection(requestListener(app.fetch, host)),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(portError(error, host, port)));
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  lingerOnClose(server);
  server.on('connection', noteConnection); // heavy turns make way while connections are accepted (own-turn.ts)
  noteArrivalsAtStop(server, () => repository.stopping);
  answerClientErrors(server, timeouts);
  refuseLargeContinues(server, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, options.uploads?.maxBytes);
  const connections = guardConnections(server, {
    total: options.maxConnections ?? CONNECTION_DEFAULTS.total,
    perClient: options.maxConnectionsPerClient ?? CONNECTION_DEFAULTS.perClient,
    pipelined: CONNECTION_DEFAULTS.pipelined,
  });
  // An error on the listening socket after start (rare) is logged, never fatal.
  server.on('error', (error) => log(`server error: ${(error as Error).message}`));
  const grpc =
    options.grpcPort === undefined
      ? undefined
      : await startGrpc({
          repository,
          host,
          port: options.grpcPort,
          maxMessageBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
          serverName: SERVER_NAME,
          serverVersion: PRODUCER_VERSION,
          access,
          unsentAnswers: options.grpcUnsentAnswers,
          arrivingBytes: options.arrivingGrpcBytes,
        }).catch((error: Error) => {
          server.close();
          throw new PortError(`cannot serve gRPC on ${host}:${options.grpcPort} (${error.message.split('\n')[0]})`);
        });
  await untilAborted(repository.scan(), options.stopping);
  if (!options.stopping?.aborted) repository.watch(options.watchIntervalMs ?? 1000);
  const actualPort = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    repository,
    connections,
    grpcPort: grpc?.port,
    close() {
      closing ??= (async () => {
        // Inference arriving from here is refused (app.ts); what arrived before runs for up to the exit timeout
        // (Triton's --exit-timeout-secs), then what still waits is answered 503 and open connections are cut:
        // a backlog for a slow model kept a stopped server running for over 90 s in an outside attack.
        // Readiness says no and nothing new loads from here (a version loading now is not served).
        const started = performance.now();
        repository.beginShutdown();
        const exit = options.exitTimeoutMs ?? EXIT_TIMEOUT_MS;
        const drop = setTimeout(() => {
          for (const version of repository.servedVersions()) version.batcher.close();
        }, exit);
        // The listener stays open while the requests in flight drain: closing it resets the connections still in
        // the kernel's accept queue (36 of 40 requests sent 50 ms before SIGTERM, an outside attack). Those
        // accepted meanwhile are answered (new inference: 503 shutting_down); it closes once no request is in
        // flight and none has been accepted for a moment, at the latest with the cut (stopping.ts).
        const listener = closesOnce(server, () => {
          // Node's close() also closes the connections idle between requests at once: a request sent on one
          // just then went unanswered (a re-attack). They are closed once quiet, as the others (sweepIdle).
          server.closeIdleConnections = () => {};
        });
        const activity = {
          accepted: () => connections.accepted,
          drained: () => connections.requestsDrained(),
          busy: () => connections.requestsInFlight > 0,
        };
        void listenerQuiet(activity, started).then(listener.close);
        const cut = setTimeout(() => {
          listener.close();
          server.closeAllConnections();
        }, exit + ANSWER_503_MS);
        drop.unref();
        cut.unref();
        // Connections with no request in flight go now (a request begun gets a moment to arrive whole).
        const sweepIdle = () => {
          connections.closeWithoutRequests(started, Math.min(exit, BEGUN_REQUEST_GRACE_MS));
          connections.closeStalledArrivals();
        };
        sweepIdle();
        const sweep = setInterval(sweepIdle, 250);
        await Promise.all([listener.closed, grpc?.close(exit + ANSWER_503_MS)]);
        clearInterval(sweep);
        clearTimeout(drop);
        clearTimeout(cut);
        // A load under way may take its whole load budget: waited for only within the exit timeout.
        await repository.close(Math.max(0, exit + ANSWER_503_MS - (performance.now() - started)));
      })();
      return closing;
    },
  };
}

/** `work`, or sooner if `signal` is aborted first (the work goes on; its result is not waited for). */
async function untilAborted(work: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return work;
  if (signal.aborted) return;
  let stop = () => {};
  const aborted = new Promise<void>((resolve) => {
    stop = resolve;
    signal.addEventListener('abort', stop, { once: true });
  });
  await Promise.race([work, aborted]);
  signal.removeEventListener('abort', stop);
}

/** How long a stopping server runs the requests already queued (default; serve --exit-timeout-ms). */
export const EXIT_TIMEOUT_MS = 15_000;
/**
 * Then how long the 503s of what still waited get to go out before the connections are cut: with the process's
 * own exit after it, a stopped server is gone within its exit timeout and a second (it was 1 s here, and
 * exits took up to 1.06 s past the timeout).
 */
const ANSWER_503_MS = 750;

/** The first SIGINT or SIGTERM, awaited by a server's CLI; listening ends with `dispose`. */
export interface StopSignal {
  /** Resolves with the signal's name. */
  received: Promise<NodeJS.Signals>;
  /** Aborted when the signal comes (for ServerOptions.stopping). */
  signal: AbortSignal;
  /** Removes the listeners: call it once the server is closed, so an in-process caller keeps none. */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM; a second one while stopping exits at once. The listeners stay registered
 * (not `once`) until `dispose`: a loader such as tsx re-raises a signal that finds no listener left.
 */
export function stopSignal(): StopSignal {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const aborting = new AbortController();
  let resolve: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((r) => {
    resolve = r;
  });
  const listener = (signal: NodeJS.Signals) => {
    if (aborting.signal.aborted) process.exit(130);
    resolve(signal);
    aborting.abort();
  };
  for (const signal of signals) process.on(signal, listener);
  const dispose = () => {
    for (const signal of signals) process.off(signal, listener);
  };
  return { received, signal: aborting.signal, dispose };
}

/**
 * `Expect: 100-continue` with a Content-Length over the limit its route has: the 413 at once, instead of
 * inviting the body only to refuse it (the point of asking first). Uploads' own larger limit counts on
 * their paths (a base64 model in JSON may be a third more). Anything else is invited as Node would.
 */
function refuseLargeContinues(server: HttpServer, maxBodyBytes: number, maxUploadBytes: number | undefined): void {
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    const length = Number(request.headers['content-length']);
    const path = targetPath(request.url);
    const limit =
      maxUploadBytes !== undefined && UPLOAD_PATH.test(path) ? uploadBodyBytes(maxUploadBytes) : maxBodyBytes;
    if (Number.isFinite(length) && length > limit) {
      const refusal = closingRefusal(
        413,
        'payload_too_large',
        `request body is ${length} bytes; the limit is ${limit}`,
        path,
      );
      response.writeHead(refusal.status, refusal.headers).end(refusal.body);
      return;
    }
    response.writeContinue();
    server.emit('request', request, response);
  });
}
