/**
 * gRPC request bytes as they arrive, within a byte budget, as HTTP bodies are (body-budget.ts): grpc-js reads
 * each stream's message whole before it is decoded, so 128 connections × 16 streams of 1 MB messages held
 * +3.2 GiB at once, every one of them to be refused. Past its first `freeBytes`, a stream asks the budget
 * (per connection and in all) for each message's room as its length prefix arrives; while it waits, the
 * stream is paused and HTTP/2 flow control holds the client back. A stream that holds bytes and sends slowly
 * while others wait is cut (the budget's pace rule), and so is one carrying more messages than a unary call
 * may. A compressed message takes room for what it decompresses to as it grows (decompress.ts), and is
 * refused (RESOURCE_EXHAUSTED) at the first chunk there is none for: 2,048 streams of 1 KB gzip frames,
 * 1 MB each decompressed, held +2.2 GiB; made to wait instead, the queue of thousands of compressed messages
 * under connection churn kept the server busy for minutes. A message's room goes back once it has been
 * decoded (from then it counts in the budget for requests being decoded) or its stream closes.
 */
import type { ServerHttp2Stream } from 'node:http2';
import { constants } from 'node:http2';
import type { BodyBudget, BodyBudgetLimits } from '../body-budget.ts';
import { sessionName } from './session-name.ts';
import { closeAfterTurn, statusSent } from './stream-end.ts';

export const ARRIVING_BYTES_DEFAULTS: BodyBudgetLimits = {
  // Up to 16 streams on each of 128 connections: the free part is what they may all hold without asking.
  freeBytes: 16 * 1024,
  total: 32 * 1024 * 1024,
  perClient: 8 * 1024 * 1024,
};

/** Messages a unary stream may carry before it is cut: its request, and one more to be answered UNIMPLEMENTED. */
const MESSAGES_A_STREAM_MAY_CARRY = 2;

/**
 * Messages a request stream (ModelStreamInfer) may send ahead of those handed on before it is cut: its
 * requests are taken one at a time, and the rest wait whole in grpc-js (a compressed one as it came: it is
 * decompressed in its turn). A client's own pipelining stays below it: HTTP/2's 64 KiB stream window holds
 * about 20 requests of one image (3 KB, the smallest a model takes), or ~100 gzip-compressed ones (a
 * re-attack: an honest client pipelining 33 of those was cut at 32).
 */
const MESSAGES_A_STREAM_MAY_SEND_AHEAD = 128;

/** One stream's metering (`meterArrivals`). */
export interface Arrivals {
  /** More room for what a compressed message decompresses to, taken as it grows, if there is room now. */
  holdDecoded(bytes: number): boolean;
  /** A message is decoded and handed on: what it held goes back (what the stream sends next is metered anew). */
  delivered(): void;
  /** A message was refused whole (its decompression failed): what it held goes back, as when handed on. */
  refused(): void;
  /** Whether part of a message has arrived and the rest not yet (a request under way). */
  midMessage(): boolean;
  /**
   * Since when (performance.now()) the client has sent nothing while free to: undefined while the stream
   * waits for room (its silence is then the server's), and from when room came its clock starts again.
   * Judging a waiting stream by its HTTP/2 windows instead cut honest calls: over a 300 ms round trip, 16
   * grpc-js calls of 1 MB on one connection shared its window, none filled its own, and 8 were cancelled at
   * a stop with no attacker (a re-check). So silent streams waiting for room are cut in turns as room comes,
   * 3 s a turn, within the exit timeout.
   */
  quietSince(): number | undefined;
}

/**
 * Meter what `stream` receives against `budget` for as long as it is open — every message, not just the
 * first: a second message on a unary stream (refused only once whole) went unmetered, 2,048 of them +1.8 GiB.
 * Must be called before grpc-js first resumes the stream (its interceptor runs in time).
 */
export function meterArrivals(
  stream: ServerHttp2Stream,
  budget: BodyBudget,
  requestStream = false,
  /** grpc-js refuses a longer message as its length arrives: no more room is asked for one. */
  maxMessageBytes = Number.POSITIVE_INFINITY,
): Arrivals {
  const cut = () => stream.close(constants.NGHTTP2_CANCEL);
  let account = budget.open(sessionName(stream.session), cut);
  // Aborts a wait for room when what it was for is gone (the message handed on, the stream closed).
  let stop = new AbortController();
  let received = 0;
  let taken = 0;
  /** What the message being decompressed has taken of the budget (holdDecoded). */
  let decodedHeld = 0;
  let closed = false;
  let waiting = false;
  let lastByteAt = performance.now();
  // Messages are framed by a 5-byte prefix (flag, length): each one's room is asked for at once, from its
  // length (capped at a client's share), not chunk by chunk (asked per 16 KB frame, a request got one
  // frame's room per round of a flood's evictions: 54 s).
  let prefix = Buffer.alloc(0);
  let restOfMessage = 0;
  let declared = 0;
  let messages = 0;
  let handedOn = 0;
  /** Follows the messages in `chunk`; false once the stream has more than a unary call may carry (it is cut). */
  const frame = (chunk: Buffer): boolean => {
    for (let at = 0; at < chunk.length; ) {
      if (restOfMessage > 0) {
        const n = Math.min(restOfMessage, chunk.length - at);
        restOfMessage -= n;
        at += n;
        continue;
      }
      const n = Math.min(5 - prefix.length, chunk.length - at);
      prefix = Buffer.concat([prefix, chunk.subarray(at, at + n)]);
      at += n;
      if (prefix.length < 5) continue;
      // grpc-js answers a unary method's second message UNIMPLEMENTED, but queues every message it is sent
      // first (hundreds of bytes each, however empty: thousands of 5-byte messages a stream, within its free
      // part, took +2 GiB). A third is cut before grpc-js sees its chunk; on a request stream, one sent too
      // far ahead of those handed on.
      const ahead = requestStream ? ++messages - handedOn : ++messages;
      if (ahead > (requestStream ? MESSAGES_A_STREAM_MAY_SEND_AHEAD : MESSAGES_A_STREAM_MAY_CARRY)) {
        cut();
        return false;
      }
      restOfMessage = prefix.readUInt32BE(1);
      // A length past the message limit is refused at once; its stream asks for no more than the limit (it
      // asked for a connection's whole share, held as long as its client trickled on: an outside attack).
      declared += 5 + Math.min(restOfMessage, budget.limits.perClient, maxMessageBytes);
      prefix = Buffer.alloc(0);
    }
    return true;
  };
  const resume = () => {
    waiting = false;
    lastByteAt = performance.now(); // the client's clock starts again as the server reads again
    if (!closed && !stream.destroyed) stream.resume();
  };
  // Answered already — grpc-js refuses a message past the limit as its length arrives, sending the status
  // itself — while its client's side is open: room back, and the stream reset once the status has gone
  // (RST_STREAM NO_ERROR, as HTTP/2 lets a server that has answered). Kept, such a call held the room it had
  // announced for as long as its client trickled (an outside attack: four of them, 68 KB/s, held the budget)
  // or sent nothing more (a re-check: 32 silent ones, 160 bytes in all, held 31.5 of 32 MiB).
  const answered = () => {
    if (closed || !statusSent(stream)) return false;
    settle();
    stream.off('data', onData);
    closeAfterTurn(stream, constants.NGHTTP2_NO_ERROR);
    return true;
  };
  const onData = (chunk: Buffer) => {
    if (answered()) return;
    lastByteAt = performance.now();
    account.arrived(chunk.length);
    received += chunk.length;
    if (!frame(chunk)) return;
    // Still waiting for room, and resumed by grpc-js meanwhile (as its handler reads a message handed on, one
    // whose room is kept until its half-close): paused again, or the rest of the stream's bytes flow in unmetered.
    if (waiting && !stream.isPaused()) stream.pause();
    const over = Math.max(received, declared) - budget.limits.freeBytes - taken;
    if (over <= 0) return;
    taken += over;
    if (waiting) return; // already paused for an earlier chunk: this one's bytes are asked for with it below
    waiting = true;
    stream.pause();
    const mine = account;
    const signal = stop.signal;
    let asked = taken;
    const ask = (bytes: number): Promise<void> =>
      mine.take(bytes, signal).then(() => {
        // Chunks that came while it waited (already in flight when paused) are asked for too.
        const more = taken - asked;
        asked = taken;
        return more > 0 ? ask(more) : undefined;
      });
    ask(over).then(resume, () => {
      if (mine === account) resume(); // not when its message was handed on meanwhile: that resumed it
    });
  };
  // Everything goes back; counting starts again from here.
  const settle = () => {
    decodedHeld = 0;
    stop.abort();
    account.close();
    stop = new AbortController();
    received = 0;
    taken = 0;
    declared = restOfMessage;
  };
  // A message done with (handed on, or refused): its room goes back, and what follows is metered anew.
  const startAgain = () => {
    settle();
    account = budget.open(sessionName(stream.session), cut);
  };
  // Before grpc-js's own listener, so that a stream cut here never reaches it (it drops a closed stream's data).
  stream.prependListener('data', onData);
  // A status sent in the headers (a refusal before any answer) ends the server's side: checked then too.
  stream.once('finish', () => setImmediate(answered));
  stream.once('close', () => {
    closed = true;
    stream.off('data', onData);
    settle();
  });
  return {
    holdDecoded: (bytes) => {
      if (closed) return false;
      account.complete(); // all it sends has arrived: it is no slow client
      // A message asks at most what an uncompressed one would (the per-connection budget): with the message
      // limit raised past it, one that decompressed beyond it could never be taken and was refused "retry
      // shortly" for ever, where the same message uncompressed was answered (an outside attack).
      const ask = Math.min(bytes, budget.limits.perClient - taken - decodedHeld);
      if (ask <= 0) return true;
      if (!account.tryTake(ask)) return false;
      decodedHeld += ask;
      return true;
    },
    delivered: () => {
      if (closed) return;
      handedOn++;
      startAgain();
      if (waiting) resume();
    },
    // Its room went back only with the stream: a client that kept its stream open after the refusal held it
    // (an outside attack: 64 refused bombs on open streams refused every other gzip call until it left).
    refused: () => {
      if (!closed) startAgain();
    },
    midMessage: () => restOfMessage > 0 || prefix.length > 0,
    quietSince: () => (waiting ? undefined : lastByteAt),
  };
}
