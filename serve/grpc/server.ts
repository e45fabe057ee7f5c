/**
 * The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`, grpc_predict_v2.proto) on
 * its own port: health, metadata, ModelInfer and Triton's ModelStreamInfer (stream-infer.ts), through the
 * same checks, batcher, statistics and limits as the HTTP route (v2-infer.ts). Inputs come as
 * `raw_input_contents` (Triton's clients) or `contents.fp32_contents`; outputs go back as
 * `raw_output_contents`, as Triton answers.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import type { Http2Server, Http2Session } from 'node:http2';
import { type AddressInfo, connect, createServer, type NetConnectOpts, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { shownName } from '../../node/repository.ts';
import type { ValueDescription } from '../../onnx/describe.ts';
import { BatchShapeError, DroppedRequestError, QueueFullError } from '../batcher.ts';
import { encodeFp32 } from '../binary-tensors.ts';
import { zodMessage } from '../body.ts';
import { BodyBudget, type BodyBudgetLimits } from '../body-budget.ts';
import { guardConnections, LISTEN_BACKLOG } from '../connections.ts';
import { wellFormed } from '../ellipsized.ts';
import { HttpError, publicMessage } from '../errors.ts';
import { assertFiniteOutputs, NonFiniteOutputError } from '../inference.ts';
import type { ModelControlAccess } from '../model-control-access.ts';
import { noteConnection } from '../own-turn.ts';
import { ModelNotFoundError, type ModelRepository } from '../repository.ts';
import { parseVersion } from '../routes/lookup.ts';
import { loadedStatistics } from '../routes/stats.ts';
import { modelConfig, modelMetadata, servedNumbers, V2_EXTENSIONS } from '../routes/v2.ts';
import { ModelFailedError } from '../runner/model-runner.ts';
import { InferRequestSchema } from '../schemas.ts';
import { BEGUN_REQUEST_GRACE_MS, closesOnce, listenerQuiet } from '../stopping.ts';
import { UnreadAnswersError } from '../unread-answers.ts';
import {
  DATATYPES,
  expectedAnswerBytes,
  inputTensor,
  outputShape,
  refuseLargeParts,
  refuseUnsupportedParameters,
  requestedOutputs,
} from '../v2-infer.ts';
import { ARRIVING_BYTES_DEFAULTS } from './arriving-bytes.ts';
import { ANSWER, type Answered, boundedCalls, type Decoded, REFUSED, type Refused, refusal } from './bounded-calls.ts';
import { addressPreamble, readAddressPreambles } from './client-address.ts';
import { fp32ContentsBytes, type InferRequestMessage } from './infer-request.ts';
import { NOT_A_MESSAGE, type SmallRequestFields, smallRequestCost } from './infer-wire.ts';
import { boundGrpcLibraryLog } from './library-log.ts';
import { MAX_METADATA_BYTES, measureHeaderLists } from './metadata-limit.ts';
import { type ControlRequest, type IndexRequest, modelRepositoryMethods } from './model-repository.ts';
import { grpcService } from './proto.ts';
import { UNSENT_ANSWER_DEFAULTS, type UnsentAnswerLimits, UnsentAnswers } from './unsent-answers.ts';

export interface GrpcOptions {
  repository: ModelRepository;
  host: string;
  port: number;
  /** The largest message taken (the HTTP body limit). */
  maxMessageBytes: number;
  serverName: string;
  serverVersion: string;
  /** Answers not yet taken by their clients (default UNSENT_ANSWER_DEFAULTS). */
  unsentAnswers?: Partial<UnsentAnswerLimits>;
  /** Request bytes arriving, before their messages are whole (default ARRIVING_BYTES_DEFAULTS). */
  arrivingBytes?: Partial<BodyBudgetLimits>;
  /** Who may load and unload models: HTTP's rules (model-control-access.ts). */
  access: ModelControlAccess;
}

export interface RunningGrpc {
  port: number;
  /** Stops listening; calls under way are answered for up to `graceMs` (default 0), then cut. */
  close(graceMs?: number): Promise<void>;
}

const HTTP_TO_GRPC: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  409: grpc.status.ALREADY_EXISTS,
  413: grpc.status.RESOURCE_EXHAUSTED,
  503: grpc.status.UNAVAILABLE,
};

/** Any failure as a gRPC status with our message (never a stack trace or a path), its text well formed. */
function grpcError(error: unknown): Partial<grpc.StatusObject> {
  const status = statusOf(error);
  return { ...status, details: wellFormed(status.details ?? '') };
}

function statusOf(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof HttpError)
    return { code: HTTP_TO_GRPC[error.status] ?? grpc.status.INVALID_ARGUMENT, details: error.message };
  if (error instanceof ModelNotFoundError) return { code: grpc.status.NOT_FOUND, details: error.message.slice(0, 300) };
  if (error instanceof NonFiniteOutputError) return { code: grpc.status.FAILED_PRECONDITION, details: error.message };
  if (error instanceof ModelFailedError || error instanceof BatchShapeError)
    return { code: grpc.status.UNAVAILABLE, details: publicMessage(error.message) };
  if (error instanceof UnreadAnswersError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: error.message };
  if (error instanceof QueueFullError || error instanceof DroppedRequestError)
    return { code: grpc.status.UNAVAILABLE, details: error.message };
  return { code: grpc.status.INTERNAL, details: 'internal server error' };
}

/** The wire types of the fields each method's request has (2: a string, 0: a bool); ModelInfer has its own walk. */
const NAME_AND_VERSION = { wireTypes: [2, 2] };
const REQUEST_FIELDS: Record<string, SmallRequestFields> = {
  ModelReady: NAME_AND_VERSION,
  ModelMetadata: NAME_AND_VERSION,
  ModelConfig: NAME_AND_VERSION,
  ModelStatistics: NAME_AND_VERSION,
  RepositoryIndex: { wireTypes: [2, 0] }, // repository_name, ready
  // repository_name, model_name, and the parameters map's entries
  RepositoryModelLoad: { wireTypes: [2, 2, 2], repeated: { 3: 16 } },
  RepositoryModelUnload: { wireTypes: [2, 2, 2], repeated: { 3: 16 } },
};

/**
 * Every method's decoder, where a malformed message is refused as INVALID_ARGUMENT instead of throwing, and
 * a message of more fields than its type has is refused unread (smallRequestCost).
 */
function refusingMalformed(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => {
      const decode = method.requestDeserialize;
      const requestDeserialize = (bytes: Buffer) => {
        const cost = smallRequestCost(bytes, REQUEST_FIELDS[name] ?? { wireTypes: [] });
        if (cost) return refusal(grpc.status.INVALID_ARGUMENT, cost);
        try {
          return decode(bytes);
        } catch {
          return refusal(grpc.status.INVALID_ARGUMENT, NOT_A_MESSAGE);
        }
      };
      return [name, { ...method, requestDeserialize }];
    }),
  );
}

/** A unary handler from an async function; errors become statuses. */
const unary =
  <Req, Res>(
    work: (request: Req, cancelled: AbortSignal, metadata: grpc.Metadata) => Promise<Res> | Res,
  ): grpc.handleUnaryCall<Req, Res> =>
  (call, callback) => {
    const refused = (call.request as Refused)?.[REFUSED];
    if (refused) return answer(callback, { ...refused, details: wellFormed(refused.details ?? '') });
    // A cancelled call's request leaves the inference queue unrun (batcher.ts).
    const cancel = new AbortController();
    call.once('cancelled', () => cancel.abort());
    Promise.resolve()
      .then(() => work(call.request, cancel.signal, call.metadata))
      .then(
        (response) => answer(callback, null, response),
        (error) => answer(callback, grpcError(error)),
      );
  };

/**
 * The call's answer, or, should grpc-js throw sending it, INTERNAL: a throw here would be outside any handler,
 * an unhandled rejection that ends the process.
 */
function answer<Res>(callback: grpc.sendUnaryData<Res>, error: Partial<grpc.StatusObject> | null, response?: Res) {
  try {
    callback(error, response);
  } catch {
    try {
      callback({ code: grpc.status.INTERNAL, details: 'internal server error' });
    } catch {
      // The call is past answering (its stream gone): nothing is left to tell.
    }
  }
}

const versionOf = (raw: string) => parseVersion(raw === '' ? undefined : raw);

/** The requests of ModelReady, ModelMetadata, ModelConfig and ModelStatistics (an empty version: none given). */
type NamedVersion = { name: string; version: string };

/** gRPC clients keep a few long-lived connections (HTTP/2 multiplexes calls): far fewer than HTTP's. */
const GRPC_CONNECTIONS = { total: 128, perClient: 32, pipelined: 16 };

export async function startGrpc(options: GrpcOptions): Promise<RunningGrpc> {
  const { repository } = options;
  const service = grpcService().service;
  const control = modelRepositoryMethods(repository, options.access);
  // Sixteen of the largest messages decoded and waiting at once (16 MiB with the default 1 MiB limit).
  const arriving = { ...ARRIVING_BYTES_DEFAULTS, ...options.arrivingBytes };
  const unsent = { ...UNSENT_ANSWER_DEFAULTS, ...options.unsentAnswers };
  const inferDecoding = boundedCalls(
    {
      decoded: 16 * options.maxMessageBytes,
      maxMessageBytes: options.maxMessageBytes,
      arriving: new BodyBudget(arriving),
      unsentAnswers: new UnsentAnswers(unsent),
    },
    async (request, cancelled) => {
      const refused = request[REFUSED];
      if (refused) return { error: { ...refused, details: wellFormed(refused.details ?? '') } };
      try {
        return { response: await infer(repository, request, cancelled) };
      } catch (error) {
        return { error: grpcError(error) };
      }
    },
  );
  // ModelInfer's decoder for both inference methods: ModelStreamInfer's requests are the same message.
  const inferMethod = (method: grpc.MethodDefinition<unknown, unknown> | undefined) => ({
    ...(method as grpc.MethodDefinition<unknown, unknown>),
    requestDeserialize: inferDecoding.requestDeserialize,
  });
  const server = new grpc.Server({
    interceptors: [inferDecoding.interceptor],
    'grpc.max_receive_message_length': options.maxMessageBytes,
    // grpc-js lifts Node's HTTP/2 session memory limit by default. The budgets bound what a session holds
    // (its share of arriving bytes, its unsent answers, a message being decoded); Node's limit sits above
    // them, a backstop: at two messages' worth it refused a client's 16 concurrent 1 MiB answers on one
    // connection with RESOURCE_EXHAUSTED ("Bandwidth exhausted"), no attack running.
    'grpc-node.max_session_memory':
      Math.ceil((arriving.perClient + unsent.perSession + 2 * options.maxMessageBytes) / 2 ** 20) + 1,
    'grpc.max_concurrent_streams': 16,
  });
  server.addService(
    {
      ...refusingMalformed(service),
      ModelInfer: inferMethod(service.ModelInfer),
      ModelStreamInfer: inferMethod(service.ModelStreamInfer),
    },
    {
      ServerLive: unary(() => ({ live: true })),
      ServerReady: unary(() => ({ ready: repository.ready })),
      ServerMetadata: unary(() => ({
        name: options.serverName,
        version: options.serverVersion,
        extensions: V2_EXTENSIONS, // every extension HTTP has: binary data, statistics, repository, configuration
      })),
      ModelReady: unary((r: NamedVersion) => {
        const version = versionOf(r.version);
        const versions = repository.versions(r.name);
        if (versions.length === 0) throw new ModelNotFoundError(`unknown model '${shownName(r.name)}'`);
        const ready = versions.some((v) => v.ready && (version === undefined || v.version === version));
        return { ready: ready && !repository.stopping };
      }),
      ModelMetadata: unary((r: NamedVersion) =>
        repository.use(r.name, versionOf(r.version), async (model) =>
          modelMetadata(model, servedNumbers(repository, model.name)),
        ),
      ),
      ModelInfer: unary((r: Decoded, cancelled) => infer(repository, r, cancelled)),
      // Run by the interceptor (boundedCalls), below grpc-js's stream object, which would read ahead of it.
      ModelStreamInfer: () => {},
      ModelConfig: unary((r: NamedVersion) =>
        repository.use(r.name, versionOf(r.version), async (model) => ({
          config: modelConfig(model, repository.settingsOf(model.name)),
        })),
      ),
      ModelStatistics: unary((r: NamedVersion) => {
        // A version is one model's: HTTP has no route for "version 1 of every model" either.
        if (r.name === '' && r.version !== '')
          throw new HttpError(400, 'invalid_request', 'a version needs the name of its model');
        return loadedStatistics(repository, r.name === '' ? undefined : r.name, versionOf(r.version));
      }),
      RepositoryIndex: unary((r: IndexRequest & Answered) => control.index(r, r[ANSWER])),
      RepositoryModelLoad: unary((r: ControlRequest, _cancelled, metadata) => control.load(r, metadata)),
      RepositoryModelUnload: unary((r: ControlRequest, _cancelled, metadata) => control.unload(r, metadata)),
    },
  );
  // grpc-js listens where only this process reaches it; clients reach it through a front that holds
  // connections to the same rules as HTTP's (connections.ts): a cap in all and per address, the least
  // recently active closed for room. grpc-js itself has no connection cap: 20,000 silent sockets used up the
  // process's files. Its own listener is a Unix socket in a private (0700) folder, not a loopback port: an
  // outside attack opened 100 sessions straight to the loopback port, past every limit (Windows, with no
  // such sockets here, keeps the loopback port).
  limitHeaderLists(server);
  boundGrpcLibraryLog();
  const inner = await bindInner(server);
  const http2Servers = http2ServersOf(server);
  readAddressPreambles(http2Servers);
  measureHeaderLists(http2Servers);
  widenConnectionWindows(http2Servers);
  const open = new Set<Socket>();
  // No Nagle delay: a call's small answer frames waited for the client's delayed ACK, ~44 ms a call on
  // loopback (an outside attack; 1.7 ms without it).
  const front = createServer({ noDelay: true }, (client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    const upstream = connect(inner.address);
    upstream.write(addressPreamble(client.remoteAddress ?? 'unknown')); // read off by readAddressPreambles
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    // The answer's bytes by hand, so the guard knows this connection was answered (it sees no requests).
    upstream.on('data', (chunk: Buffer) => {
      guard.answered(client);
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
  });
  const guard = guardConnections(front, GRPC_CONNECTIONS, 'bytes');
  front.on('connection', noteConnection);
  const port = await new Promise<number>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () =>
      resolve((front.address() as AddressInfo).port),
    );
  });
  return {
    port,
    close: async (graceMs = 0) => {
      // Calls under way (and those queued for a model) are answered for up to `graceMs`, then whatever is left
      // is cut. The listener stays open while they drain and until it has accepted nothing for a moment
      // (stopping.ts; calls on connections accepted meanwhile are refused REFUSED_STREAM): closed at
      // once, it reset 23–31 of 40 connections a burst had opened just before SIGTERM (an outside attack).
      const stoppingSince = performance.now();
      const frontListener = closesOnce(front);
      const activity = { accepted: () => guard.accepted, drained: inferDecoding.drained, busy: inferDecoding.busy };
      const frontQuiet = listenerQuiet(activity, stoppingSince);
      const cut = () => {
        for (const socket of open) socket.destroy();
        server.forceShutdown();
      };
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          cut();
          resolve();
        }, graceMs);
      });
      // Again while it waits: calls that end meanwhile may be left open by their clients too. From the second
      // sweep on, a session with no call left is closed: it takes no new stream once shutdown began, and one
      // whose header block was cut mid-way (no call yet) held shutdown for the whole exit timeout.
      inferDecoding.stopCalls();
      let sweeps = 0;
      const closedBySweep = new WeakSet<Http2Session>();
      const sweep = setInterval(() => {
        inferDecoding.stopCalls();
        if (++sweeps < 2) return;
        const begunMayFinish = performance.now() - stoppingSince < Math.min(graceMs, BEGUN_REQUEST_GRACE_MS);
        closeIdleSessions(sessionsOf(server), inferDecoding, closedBySweep, begunMayFinish);
      }, 250);
      // GOAWAY only once the calls under way have ended (or the grace is over): sent while a client's
      // requests were still arriving and more streams were opening, Node's HTTP/2 session failed with a
      // protocol error (nghttp2 -505) and was destroyed, every call on it ending INTERNAL (a burst of 40 calls
      // of 200 KB: 8–14 INTERNAL, none with this order). Calls that start meanwhile are refused
      // REFUSED_STREAM, which clients retry elsewhere.
      await Promise.race([inferDecoding.drained(), graceOver]);
      // Before grpc-js closes its own listener: a connection the front accepts needs it to connect to.
      await Promise.race([frontQuiet, graceOver]);
      frontListener.close();
      // grpc-js closes each session it lists, and forgets one only at its 'close' event: a session closed or
      // destroyed before that (by the sweep, its client or a protocol error) would be closed after the fact, and
      // Node never calls back for it — shutdown waited forever (an outside attack: 7 of 13 floods of new calls
      // from 4–16 connections). Their 'close' first; each wait bounded by the grace all the same.
      await closingSessionsClosed(server, graceOver);
      await Promise.race([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), graceOver]);
      clearTimeout(timer);
      clearInterval(sweep);
      for (const socket of open) socket.destroy();
      await frontListener.closed;
      inner.remove();
    },
  };
}

/**
 * The metadata limit (metadata-limit.ts) advertised in the HTTP/2 settings, so that Node resets a stream past
 * it as its headers arrive (once the client has acknowledged them). grpc-js passes no such option on: its
 * HTTP/2 servers' options are set before they are made (a private field: left as they are should a version
 * lack it).
 */

function limitHeaderLists(server: grpc.Server): void {
  const common = (server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } })
    .commonServerOptions;
  if (common) common.settings = { ...common.settings, maxHeaderListSize: MAX_METADATA_BYTES };
}

/**
 * Each connection's receive window, past HTTP/2's 64 KiB. A connection's window is shared by its calls and
 * refilled a round trip later, so over a 150 ms link one connection took ~213 KB/s in all: 16 grpc-js calls of
 * 1 MB, 8 of them holding room, got 13–16 KB/s each, and the budget's pace rule cancelled those 8 (a
 * re-check, no attacker). Memory stays as it was: a paused call still buffers at most its own 64 KiB stream
 * window, and what a call reads counts in the budget.
 */
const CONNECTION_WINDOW_BYTES = 16 * 64 * 1024;

function widenConnectionWindows(servers: Iterable<Http2Server>): void {
  for (const server of servers)
    server.on('session', (session: Http2Session) => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
      } catch {
        // A session already closing takes no window update.
      }
    });
}

/** grpc-js's HTTP/2 servers, once bound (a private field: none should a version lack it). */
const http2ServersOf = (server: grpc.Server): Http2Server[] => [
  ...((server as unknown as { http2Servers?: Map<Http2Server, unknown> }).http2Servers?.keys() ?? []),
];

/** grpc-js's HTTP/2 sessions (a private field: none should a version lack it). */
const sessionsOf = (server: grpc.Server): Http2Session[] => [
  ...((server as unknown as { sessions?: Map<Http2Session, unknown> }).sessions?.keys() ?? []),
];

/**
 * One sweep of a stopping server's sessions that carry no call: each is closed first and destroyed at the next
 * sweep if still there (`closedBefore`). Destroyed at once, a call begun a few ms before the sweep ended with
 * no status under a GOAWAY that covered it (grpc-js: INTERNAL; an outside attack); closed, GOAWAY goes out
 * after what the session has queued (a refusal just sent), and a stream arriving after it is refused. While
 * `begunMayFinish`, a session whose next call's header block has begun to arrive (nghttp2 has read part of a
 * stream no call began on) is left alone, the moment HTTP gives a request begun: its GOAWAY would cover that
 * call, which would then end without a status (a re-attack: header blocks stalled 300–600 ms).
 */
function closeIdleSessions(
  sessions: Http2Session[],
  calls: { sessionsWithCalls(): Set<Http2Session | undefined>; lastCallOn(session: Http2Session): number },
  closedBefore: WeakSet<Http2Session>,
  begunMayFinish: boolean,
): void {
  const busy = calls.sessionsWithCalls();
  for (const session of sessions) {
    if (busy.has(session)) continue;
    const begun = (session.state.lastProcStreamID ?? 0) > calls.lastCallOn(session);
    if (begun && begunMayFinish) continue;
    if (closedBefore.has(session)) session.destroy();
    else {
      closedBefore.add(session);
      session.close();
    }
  }
}

/** When `session` emits 'close' (never rejecting, as events.once would on an 'error' first). */
const closed = (session: Http2Session) => new Promise<void>((resolve) => session.once('close', () => resolve()));

/**
 * Sessions closed or destroyed whose 'close' has not come yet (grpc-js still lists them): grpc-js's own close()
 * of one would never be called back.
 */
const closingSessions = (server: grpc.Server) =>
  sessionsOf(server).filter((session) => session.destroyed || session.closed);

/** Until grpc-js lists no closed or destroyed session (one closed while waiting included), or `over` has settled. */
async function closingSessionsClosed(server: grpc.Server, over: Promise<void>): Promise<void> {
  let settled = false;
  void over.then(() => {
    settled = true;
  });
  for (let closing = closingSessions(server); closing.length > 0 && !settled; closing = closingSessions(server))
    await Promise.race([Promise.all(closing.map(closed)), over]);
}

/** grpc-js's own listener: a Unix socket in a fresh 0700 folder (a loopback port on Windows). */
async function bindInner(server: grpc.Server): Promise<{ address: NetConnectOpts; remove: () => void }> {
  const bind = (target: string) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
  if (process.platform === 'win32') {
    const port = await bind('127.0.0.1:0');
    return { address: { host: '127.0.0.1', port }, remove: () => {} };
  }
  const folder = mkdtempSync(join(tmpdir(), 'grpc-'));
  const path = join(folder, 'grpc.sock');
  await bind(`unix:${path}`);
  return { address: { path }, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

/** An input's fp32_contents as little-endian float32 bytes; FP32 data in another field is refused by name. */
function contentsValues(tensor: InferRequestMessage['inputs'][number]): Uint8Array {
  const { bytes, others } = fp32ContentsBytes(tensor.contents);
  if (tensor.datatype === 'FP32' && others.length > 0)
    throw new HttpError(
      400,
      'invalid_inputs',
      `input '${shownName(tensor.name)}' is FP32: its values go in fp32_contents (or raw_input_contents), not ${others.join(', ')}`,
    );
  return bytes;
}

/** ModelInfer: the message as the HTTP route's request, the same checks, raw outputs. */
function infer(repository: ModelRepository, r: Decoded, cancelled?: AbortSignal) {
  const raw = r.raw_input_contents;
  if (raw.length > 0 && raw.length !== r.inputs.length)
    throw new HttpError(400, 'invalid_inputs', `${raw.length} raw_input_contents for ${r.inputs.length} inputs`);
  // As Triton: a tensor's data comes one way, never both (which would the server believe?).
  const both = raw.length > 0 && r.inputs.find((t) => t.contents.length > 0);
  if (both)
    throw new HttpError(
      400,
      'invalid_inputs',
      `input '${shownName(both.name)}' has contents as well as raw_input_contents: send one or the other`,
    );
  refuseLargeParts(r.id, [r.parameters, ...r.inputs.map((t) => t.parameters), ...r.outputs.map((o) => o.parameters)]);
  for (const t of r.inputs) refuseUnsupportedParameters(t.parameters, `input '${shownName(t.name)}'`);
  for (const o of r.outputs) refuseUnsupportedParameters(o.parameters, `output '${shownName(o.name)}'`);
  // The header through the HTTP route's schema; the values as bytes, through the binary extension's decoder.
  const parsed = InferRequestSchema.safeParse({
    ...(r.id ? { id: r.id } : {}),
    inputs: r.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    ...(r.outputs.length > 0 ? { outputs: r.outputs.map((o) => ({ name: o.name })) } : {}),
  });
  if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
  const binary = raw.length > 0 ? raw : r.inputs.map(contentsValues);
  const request = { body: parsed.data, binary, binaryFrom: raw.length > 0 ? 'raw_input_contents' : 'fp32_contents' };
  return repository.use(r.model_name, versionOf(r.model_version), (model) =>
    model.stats.request(async () => {
      const { count, data } = inputTensor(model, request, request.binaryFrom);
      const wanted = requestedOutputs(model, request.body);
      const asBinary = wanted.map(({ name }) => ({ name, binary: true }));
      const unsent = r[ANSWER]?.hold(expectedAnswerBytes(model, asBinary, count));
      if (unsent) throw new UnreadAnswersError(unsent);
      const { outputs, timings } = await model.batcher.inferTimed(data, count, cancelled, r[ANSWER]?.client);
      assertFiniteOutputs(model, Object.fromEntries(wanted.map(({ name }) => [name, outputs[name] as Float32Array])));
      const tensors = wanted.map(({ name }) => {
        const o = model.signature.outputs.find((s) => s.name === name) as ValueDescription;
        const values = outputs[name] as Float32Array;
        return { name, datatype: DATATYPES[o.dataType] ?? o.dataType, shape: outputShape(o, values, count), values };
      });
      const value = {
        model_name: model.name,
        model_version: String(model.version),
        id: r.id,
        outputs: tensors.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        raw_output_contents: tensors.map((t) => Buffer.from(encodeFp32(t.values))),
      };
      return { value, count, timings };
    }),
  );
}
