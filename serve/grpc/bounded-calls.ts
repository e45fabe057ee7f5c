/**
 * The interceptor every gRPC call passes (`boundedCalls`): the budgets for request bytes arriving, requests
 * decoded and answers unsent, compressed messages decompressed within room, ModelStreamInfer run one request
 * at a time, and the calls a stopping server ends.
 */
import { type Http2Session, constants as http2Constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { BodyBudget } from '../body-budget.ts';
import { STALLED_MS } from '../unread-answers.ts';
import { meterArrivals } from './arriving-bytes.ts';
import { forgetReadMessages } from './decoder-chunks.ts';
import { DECOMPRESSING_REFUSED, decompressWithin } from './decompress.ts';
import { decodeInferRequest, type InferRequestMessage } from './infer-request.ts';
import { INFER_WIRE_LIMITS, inferRequestCost } from './infer-wire.ts';
import { callMetadataBytes, MAX_METADATA_BYTES, METADATA_REFUSED } from './metadata-limit.ts';
import { closeAfterTurn, statusSent } from './stream-end.ts';
import { type Answer, type InferStream, inferStream } from './stream-infer.ts';
import type { CallAnswer, UnsentAnswers } from './unsent-answers.ts';

/** A request its decoder refused, carrying the status to answer with (a deserializer that throws is INTERNAL). */
export const REFUSED = Symbol('refused');
export type Refused = { [REFUSED]?: Partial<grpc.StatusObject> };
export const refusal = (code: grpc.status, details: string) => ({ [REFUSED]: { code, details } });

/**
 * ModelInfer's decoding, bounded: a request whose wire bytes would decode into more than the server takes is
 * refused unread (infer-wire.ts), and the raw bytes of requests decoded and not yet answered are held to a
 * budget of `budget` bytes — grpc-js decodes every message as it arrives, so without one, many streams of
 * large requests waiting for the model would hold their decoded objects at once (an outside attack: 4.7 GB
 * and a crash). A refusal is a request object carrying its status, answered by the handler. Bytes count
 * from when the call's listener receives the request and go back when its answer is handed over or the call
 * ends however it ends (`interceptor`: its status sent, or cancelled), not when a handler answers: a second
 * message on a unary stream never reaches one (a re-attack filled the budget for good that way in 0.5 s).
 * Not at the status either: grpc-js sends it once the answer has left, which a client that pauses its
 * streams never lets happen (it held every other client's ModelInfer off with RESOURCE_EXHAUSTED); the
 * answer's bytes count from there instead (unsent-answers.ts).
 */
const HELD = Symbol('held');
const STREAM_INFER_PATH = '/inference.GRPCInferenceService/ModelStreamInfer';
/** The call's answer in the unsent-answers budget, given to the handler on its request. */
export const ANSWER = Symbol('answer');
export type Answered = { [ANSWER]?: CallAnswer };
export type Decoded = InferRequestMessage & Refused & Answered & { [HELD]?: number };

/** The HTTP/2 stream under a call (grpc-js keeps it on its base call; undefined should a version not). */
const streamOf = (call: grpc.ServerInterceptingCallInterface) =>
  (call as unknown as { stream?: ServerHttp2Stream }).stream;

/** What calls may hold: request bytes arriving, requests decoded, answers unsent (each file's comment). */
export interface CallBudgets {
  /** Bytes of requests decoded and not yet answered. */
  decoded: number;
  maxMessageBytes: number;
  arriving: BodyBudget;
  unsentAnswers: UnsentAnswers;
}

/** grpc-js's base call decompresses each message here (a private method: left alone should a version lack it). */
type Decompressing = { decompressMessage?: (message: Buffer, encoding: string) => Buffer | Promise<Buffer> };

/** grpc-js's base call sends its own statuses here (a private method, like decompressMessage). */
type SendingStatus = { sendStatus?: (status: Partial<grpc.StatusObject>) => void };

/**
 * The client's errors that grpc-js answers as the server's: a malformed `grpc-timeout` header (INTERNAL, gRPC's
 * 500, sent from the base call's constructor on the next tick — after this interceptor is made), and a unary
 * call with no whole request message or with two (UNIMPLEMENTED, "… for server streaming method"). Each is
 * INVALID_ARGUMENT here, in words that fit the call.
 */
const CLIENT_ERRORS: { code: grpc.status; details: RegExp; says: string }[] = [
  {
    code: grpc.status.INTERNAL,
    details: /^Invalid grpc-timeout value/,
    says: 'the grpc-timeout header is not a valid timeout',
  },
  {
    code: grpc.status.UNIMPLEMENTED,
    details: /^Received no request message for/,
    says: 'the call ended without a whole request message',
  },
  {
    code: grpc.status.UNIMPLEMENTED,
    details: /^Received a second request message for/,
    says: 'the call sent more than one request message; this method takes one',
  },
];

function clientErrorsAsInvalid(call: grpc.ServerInterceptingCallInterface): void {
  const base = call as unknown as SendingStatus;
  const send = base.sendStatus?.bind(call);
  if (!send) return;
  base.sendStatus = (status) => {
    const known = CLIENT_ERRORS.find((e) => e.code === status.code && e.details.test(status.details ?? ''));
    send(known ? { ...status, code: grpc.status.INVALID_ARGUMENT, details: known.says } : status);
  };
}

const HALF_CLOSE_LATE = `the request came whole but the call did not end its side within ${STALLED_MS / 1000} s; this method takes one message, then the client's half-close`;

/** ModelStreamInfer's requests, one at a time (stream-infer.ts): how each is answered. */
export type StreamAnswerer = (request: Decoded, cancelled: AbortSignal) => Promise<Answer>;

export function boundedCalls(budgets: CallBudgets, streamAnswer: StreamAnswerer) {
  const { decoded: budget, arriving, unsentAnswers, maxMessageBytes } = budgets;
  let held = 0;
  /** ModelStreamInfer's streams open: told when the server stops (an idle one held shutdown for its timeout). */
  const openStreams = new Set<InferStream>();
  /** Every call's HTTP/2 stream, and whether a request has come on it (for the server stopping: `stopCalls`). */
  const openCalls = new Map<ServerHttp2Stream, OpenCall>();
  /** Set by `stopCalls`: a call that starts after it is refused (REFUSED_STREAM) as it starts. */
  let stopping = false;
  /** Resolved when the last open call closes (`drained`). */
  const drainWaiters = new Set<() => void>();
  // Calls refused as they started after SIGTERM, until their refusal has gone out: their sessions are not
  // idle (destroyed by a sweep before it, a call ended without a status: INTERNAL at grpc-js, an outside attack).
  const refusing = new Set<ServerHttp2Stream>();
  /** Each session's highest stream id a call began on: nghttp2 reading past it means a header block is arriving. */
  const lastCall = new WeakMap<Http2Session, number>();
  // Packed fp32_contents may carry the message limit's worth of floats (see infer-wire.ts).
  const wireLimits = {
    ...INFER_WIRE_LIMITS,
    packedFloats: Math.max(INFER_WIRE_LIMITS.packedFloats, Math.floor(maxMessageBytes / 4)),
  };
  const requestDeserialize = (bytes: Buffer): Decoded => {
    const seen: { id?: string } = {};
    const cost = inferRequestCost(bytes, wireLimits, seen);
    // Refused undecoded, with the id the walk read: a ModelStreamInfer answer names the request it refuses.
    const refused = (code: grpc.status, details: string) => ({ ...refusal(code, details), id: seen.id }) as Decoded;
    if (cost) return refused(grpc.status.INVALID_ARGUMENT, cost);
    if (held + bytes.length > budget)
      return refused(
        grpc.status.RESOURCE_EXHAUSTED,
        'the server holds as many gRPC requests as it takes at once; retry shortly',
      );
    let request: Decoded;
    try {
      request = decodeInferRequest(bytes) as Decoded; // what the walk passes protobufjs may still refuse
    } catch {
      return refused(grpc.status.INVALID_ARGUMENT, 'the request is not a valid ModelInferRequest');
    }
    request[HELD] = bytes.length; // counted when the call's listener receives it (below)
    return request;
  };
  const interceptor: grpc.ServerInterceptor = (descriptor, call) => {
    clientErrorsAsInvalid(call);
    forgetReadMessages(call);
    const stream = streamOf(call);
    const session = stream?.session;
    if (session && stream?.id !== undefined) lastCall.set(session, Math.max(lastCall.get(session) ?? 0, stream.id));
    // ModelStreamInfer is run here, one request at a time, not by its handler (stream-infer.ts).
    const streaming = descriptor.path === STREAM_INFER_PATH;
    // Every method's message arrives within the budget for arriving bytes (arriving-bytes.ts), until whole.
    const arrivals = stream ? meterArrivals(stream, arriving, streaming, maxMessageBytes) : undefined;
    const base = call as unknown as Decompressing;
    const decompress = base.decompressMessage?.bind(call);
    // grpc-js decompresses every message of a chunk as it arrives, each call's messages in order. On a request
    // stream, a compressed message waits until the stream is ready for it (the answer before it has left):
    // 7 gzip messages of 1 KB in one chunk held 7 MB a stream, past every budget (an outside attack: 2 GB from
    // 256 streams), and, decompressed as soon as the one before was taken, each held 1 MiB of the arriving
    // budget behind a client that never read (a re-attack: 32 such streams kept everyone else's large calls
    // waiting); a corrupt one failed the call before the answer ahead of it had gone.
    const turns = readsInTurn();
    // Compressed messages arrived whole and not yet handed on: a call with one has been asked for (a stopping
    // server refused a gzip call whose message was being decompressed at SIGTERM: a re-attack).
    let decompressing = 0;
    if (stream && arrivals && decompress) {
      const decompressCompressed = async (message: Buffer, encoding: string): Promise<Buffer> => {
        const turn = turns.next();
        if (streaming) await turn;
        // A turn of the loop first: a stream reset in the same read of its connection is closed by then and
        // costs nothing (1 KB of gzip is 1 MB to decompress and decode: an outside attack's connection churn
        // of reset gzip calls kept the server busy, gRPC unreachable, for minutes after it stopped).
        await new Promise((resolve) => setImmediate(resolve));
        if (stream.closed || stream.destroyed) throw { code: grpc.status.CANCELLED, details: 'the call ended' };
        // Room as it decompresses (decompress.ts); an encoding grpc-js has no decompressor for, it refuses.
        if (encoding === 'gzip' || encoding === 'deflate')
          return decompressWithin(message.subarray(5), encoding, maxMessageBytes, (bytes) =>
            arrivals.holdDecoded(bytes),
          ).catch((error: unknown) => {
            arrivals.refused();
            throw error;
          });
        if (!arrivals.holdDecoded(maxMessageBytes))
          throw { code: grpc.status.RESOURCE_EXHAUSTED, details: DECOMPRESSING_REFUSED };
        return decompress(message, encoding);
      };
      base.decompressMessage = async (message, encoding) => {
        if (encoding === 'identity') {
          turns.next();
          // The compressed flag is 0 or 1 (gRPC's PROTOCOL-HTTP2.md); grpc-js read any other byte as 0.
          const flag = message[0] ?? 0;
          if (flag > 1) {
            arrivals.refused();
            throw {
              code: grpc.status.INVALID_ARGUMENT,
              details: `the message's compressed flag is ${flag}; gRPC has 0 and 1`,
            };
          }
          return decompress(message, encoding);
        }
        decompressing++;
        try {
          return await decompressCompressed(message, encoding);
        } finally {
          decompressing--;
        }
      };
    }
    let mine = 0;
    let ended = false;
    // Every method's answer counts until its stream closes (sent in full, or cut); without the stream, until the
    // call ends. Not only ModelInfer's: never-read RepositoryIndex answers of 540 KB, 16 streams on each of 128
    // connections, took +0.6 GB (an outside attack). Only ModelInfer's requests carry bytes to hold (HELD).
    const answer = unsentAnswers.open(stream?.session);
    let received = 0;
    let halfClosed = false;
    // It started after SIGTERM, on a connection the server has not yet sent GOAWAY on (it drains its calls
    // first): nothing of it runs, so the client may retry it elsewhere. Not an open call: a flood of such calls
    // never holds the drain. Its messages never reach a handler, which answered some of them in the turn
    // before the refusal (a message our checks refuse: INVALID_ARGUMENT; once the exit timeout had passed:
    // UNAVAILABLE, which grpc-js does not retry by itself; an outside attack).
    const refusedAtStart = stream !== undefined && stopping;
    if (stream && refusedAtStart) {
      refusing.add(stream);
      stream.once('close', () => {
        answer.end();
        refusing.delete(stream);
      });
      closeAfterTurn(stream, http2Constants.NGHTTP2_REFUSED_STREAM);
    } else if (stream) {
      // Under way: a unary call's handler runs once its request and half-close are in (a request sent whole
      // without its half-close held SIGTERM for the exit timeout); a request still arriving is let finish,
      // as HTTP's uploads are. A request stream is ended by its own stop().
      openCalls.set(stream, {
        requested: () =>
          (received > 0 && (halfClosed || streaming)) || decompressing > 0 || (arrivals?.midMessage() ?? false),
        // A unary call's message begun and then silent (its first, or a second after a whole one): it held a
        // stopping server for the whole exit timeout (a client stalled after its 5-byte length prefix: 17 s).
        // Cut once as quiet as a stalled reader is. (A request stream's stop() ends it between messages.)
        arrivalStalled: (now) => {
          if (streaming || arrivals?.midMessage() !== true) return false;
          const quiet = arrivals.quietSince();
          return quiet !== undefined && now - quiet >= STALLED_MS;
        },
      });
      stream.once('close', () => {
        answer.end();
        openCalls.delete(stream);
        if (openCalls.size > 0) return;
        for (const resolve of drainWaiters) resolve();
        drainWaiters.clear();
      });
    }
    /** A unary call's first request, in until its half-close (withOnReceiveMessage). */
    let awaitingBytes = 0;
    const countDecoded = (bytes: number) => {
      if (ended) return;
      held += bytes;
      mine += bytes;
    };
    // The request's bytes go back once its answer is built (the request is done with), or when the call ends;
    // a unary call's further messages then count no more (none reaches a handler).
    const releaseRequest = () => {
      held -= mine;
      mine = 0;
      if (!streaming) ended = true;
    };
    const release = () => {
      releaseRequest();
      ended = true;
      if (!stream) answer.end();
    };
    // A unary call's request is in whole and its half-close (which every client sends with it, or right behind
    // it) has not come: its handler never runs, and the request holds its arriving room (below). 16 streams of
    // 1 MB sent whole and never half-closed held the decoded-request budget for as long as their connection
    // stayed, every other client's ModelInfer RESOURCE_EXHAUSTED (an outside attack). Answered after STALLED_MS.
    let halfCloseLate: ReturnType<typeof setTimeout> | undefined;
    const awaitHalfClose = () => {
      if (halfCloseLate) return;
      halfCloseLate = setTimeout(() => {
        if (halfClosed || !stream || stream.closed || statusSent(stream)) return;
        intercepting.sendStatus({
          code: grpc.status.INVALID_ARGUMENT,
          details: HALF_CLOSE_LATE,
          metadata: new grpc.Metadata(),
        });
        closeAfterTurn(stream, http2Constants.NGHTTP2_NO_ERROR);
      }, STALLED_MS);
      halfCloseLate.unref();
    };
    let requests: InferStream | undefined;
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        const listener = new grpc.ServerListenerBuilder()
          .withOnReceiveMetadata((metadata, nextMetadata) => {
            // Past the limit, the call never starts: no handler runs, and no message of it is read.
            if (callMetadataBytes(stream, metadata) <= MAX_METADATA_BYTES) return nextMetadata(metadata);
            intercepting.sendStatus({
              code: grpc.status.RESOURCE_EXHAUSTED,
              details: METADATA_REFUSED,
              metadata: new grpc.Metadata(),
            });
          })
          .withOnReceiveMessage((message: Decoded, nextMessage) => {
            // A unary call's request, until its half-close: it keeps the room it took arriving (per connection,
            // queued, given back in turns, its stream cut as slow while others wait) and is not yet counted
            // among requests decoded. Counted there at once, 2 connections × 16 such calls of 1 MB, reopened as
            // answered, refused every other client's ModelInfer RESOURCE_EXHAUSTED for as long as they went on.
            const awaiting = !streaming && !halfClosed && !refusedAtStart && received === 0;
            if (!awaiting) arrivals?.delivered();
            if (refusedAtStart) return;
            received++;
            // Counted here, not in the decoder: grpc-js drops a message decoded after its call was cancelled
            // (a gzip-compressed one is decompressed asynchronously) before any listener sees it, and its
            // bytes counted at decoding never went back (an outside attack: 810 reset calls, then every
            // ModelInfer RESOURCE_EXHAUSTED until a restart).
            const bytes = message?.[HELD] ?? 0;
            if (awaiting) awaitingBytes = bytes;
            else countDecoded(bytes);
            if (message && typeof message === 'object') message[ANSWER] = answer;
            if (awaiting) awaitHalfClose();
            if (requests) requests.message(message ?? ({} as Decoded));
            else nextMessage(message);
          })
          .withOnReceiveHalfClose((nextHalfClose) => {
            halfClosed = true;
            clearTimeout(halfCloseLate);
            if (refusedAtStart) return;
            if (!streaming && received > 0) {
              countDecoded(awaitingBytes);
              awaitingBytes = 0;
              arrivals?.delivered();
            }
            if (requests) requests.halfClose(arrivals?.midMessage());
            else nextHalfClose();
          })
          .withOnCancel(() => {
            clearTimeout(halfCloseLate);
            release();
            requests?.cancel();
            if (requests) openStreams.delete(requests);
            turns.cancel();
          })
          .build();
        next(listener);
        if (streaming) {
          // Each read asked for lets the next message be decompressed (readsInTurn).
          const reading = {
            sendMessage: intercepting.sendMessage.bind(intercepting),
            sendStatus: intercepting.sendStatus.bind(intercepting),
            startRead: () => {
              turns.read();
              intercepting.startRead();
            },
            clientEnded: () => stream?.state?.remoteClose === 1,
          };
          requests = inferStream(
            reading,
            (request, cancelled) => streamAnswer(request as Decoded, cancelled),
            // Its answer has left: its bytes are no longer held (the next request's answer holds its own).
            () => answer.end(),
          );
          openStreams.add(requests);
        }
      },
      sendMessage: (message, next) => {
        // Its bytes may wait for the client (its window shut) long after: they count as the answer's now.
        answer.handedOver();
        releaseRequest();
        next(message);
      },
      sendStatus: (status, next) => {
        clearTimeout(halfCloseLate);
        release();
        const answering = stream?.headersSent;
        next(status);
        if (!requests) return;
        openStreams.delete(requests);
        // A stream ended before its client ended its side (the server stopping) is reset once its status has
        // gone (RST_STREAM NO_ERROR, as HTTP/2 lets a server that has answered): open, it held shutdown.
        if (!stream || stream.closed) return;
        const reset = () => closeAfterTurn(stream, http2Constants.NGHTTP2_NO_ERROR);
        // The status goes in the headers when nothing was answered, else as trailers, when the stream asks.
        if (answering) stream.once('wantTrailers', reset);
        else reset();
      },
    });
    return intercepting;
  };
  /** While stopping: each answering call's session's bytes sent, and since when they have not moved. */
  const progress = new Map<ServerHttp2Stream, { sent: number; since: number }>();
  /**
   * Its answer waits to leave and its connection has taken no byte for STALLED_MS (a client that kept its
   * window shut held shutdown). Progress is the session's bytes written: a stream's own write queue moves
   * only when a whole message has left, and a reader taking 60 bytes a second was cut as stalled.
   */
  const stalled = (stream: ServerHttp2Stream, now: number) => {
    if (stream.bufferSize === 0) {
      progress.delete(stream);
      return false;
    }
    const sent = stream.session?.socket?.bytesWritten ?? 0;
    const seen = progress.get(stream);
    if (seen?.sent === sent) return now - seen.since >= STALLED_MS;
    progress.set(stream, { sent, since: now });
    return false;
  };
  /**
   * The server is stopping: every request stream ends once its request under way is answered (one whose
   * client has ended its side, once all are); a call that has answered while its client had not ended its
   * side (ended by grpc-js itself: a corrupt body, a refusal) is reset NO_ERROR, one whose request never came
   * REFUSED_STREAM (nothing was under way; a client may retry it elsewhere), and one whose answer is stalled
   * CANCEL. Open, each held shutdown for the whole exit timeout (re-attacks). From the first call on, a call
   * that starts is refused REFUSED_STREAM as it starts (GOAWAY waits for the calls under way: server.ts).
   */
  const stopCalls = () => {
    stopping = true;
    for (const s of openStreams) s.stop();
    const now = performance.now();
    for (const [stream, { requested, arrivalStalled }] of openCalls) {
      if (stream.closed) {
        progress.delete(stream);
        continue;
      }
      const code = statusSent(stream)
        ? http2Constants.NGHTTP2_NO_ERROR
        : !requested()
          ? http2Constants.NGHTTP2_REFUSED_STREAM
          : stalled(stream, now) || arrivalStalled(now)
            ? http2Constants.NGHTTP2_CANCEL
            : undefined;
      if (code !== undefined) closeAfterTurn(stream, code);
    }
  };
  /** Resolves once no call is open (at once if none is). */
  const drained = () =>
    openCalls.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.add(resolve));
  /** Whether a call is open now. */
  const busy = () => openCalls.size > 0;
  /** The HTTP/2 sessions that carry a call not yet closed, or a refusal not yet sent. */
  const sessionsWithCalls = () => new Set([...openCalls.keys(), ...refusing].map((stream) => stream.session));
  /** The highest stream id a call began on in `session` (0: none). */
  const lastCallOn = (session: Http2Session) => lastCall.get(session) ?? 0;
  return { requestDeserialize, interceptor, stopCalls, drained, busy, sessionsWithCalls, lastCallOn };
}

/** A call a stopping server waits for. */
interface OpenCall {
  /** Its request is in, or under way (arriving, being decompressed): it is answered, not refused. */
  requested(): boolean;
  /** Its request began to arrive and its client then went quiet for STALLED_MS (at `now`): it is cut. */
  arrivalStalled(now: number): boolean;
}

/**
 * A call's messages in arrival order: `next()` for each as it arrives, settling once its stream has asked
 * for that many reads (`read`: message i after read i + 1), or the call is cut (`cancel`).
 */
function readsInTurn() {
  let arrived = 0;
  let reads = 0;
  const waiting = new Map<number, () => void>();
  return {
    next(): Promise<void> {
      const index = arrived++;
      if (reads > index) return Promise.resolve();
      return new Promise((resolve) => waiting.set(index, resolve));
    },
    read(): void {
      reads++;
      waiting.get(reads - 1)?.();
      waiting.delete(reads - 1);
    },
    cancel(): void {
      for (const resolve of waiting.values()) resolve();
      waiting.clear();
    },
  };
}
