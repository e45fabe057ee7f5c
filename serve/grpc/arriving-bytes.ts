/**
 * gRPC request bytes as they arrive, within a byte budget, as HTTP bodies are (body-budget.ts): grpc-js reads
 * each stream's message whole before it is decoded, so 128 connections × 16 streams of 1 MB messages held
 * +3.2 GiB at once, every one of them to be refused. Past its first `freeBytes` each chunk a stream receives
 * takes bytes from the budget, per connection and in all; while it waits, the stream is paused and HTTP/2
 * flow control holds the client back. A stream that holds bytes and sends slowly while others wait is cut
 * (the budget's pace rule). A compressed message takes room for all it may decompress to (the message limit)
 * before it is decompressed, or is refused (RESOURCE_EXHAUSTED) when there is none: 2,048 streams of 1 KB
 * gzip frames, 1 MB each decompressed, held +2.2 GiB; made to wait instead, the queue of thousands of
 * compressed messages under connection churn kept the server busy for minutes. Its
 * bytes go back once its message has been decoded (from then it counts in the budget for requests being
 * decoded) or its stream closes.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { constants } from 'node:http2';
import type { BodyBudget, BodyBudgetLimits } from '../body-budget.ts';

export const ARRIVING_BYTES_DEFAULTS: BodyBudgetLimits = {
  // Up to 16 streams on each of 128 connections: the free part is what they may all hold without asking.
  freeBytes: 16 * 1024,
  total: 32 * 1024 * 1024,
  perClient: 8 * 1024 * 1024,
};

/** A name per HTTP/2 session: the budget's "client" (through the front, every session has the same address). */
const names = new WeakMap<Http2Session, string>();
let sessions = 0;
function nameOf(session: Http2Session | undefined): string {
  if (!session) return 'grpc';
  let name = names.get(session);
  if (!name) {
    name = `grpc-session-${++sessions}`;
    names.set(session, name);
  }
  return name;
}

/** One stream's metering (`meterArrivals`). */
export interface Arrivals {
  /** Room for what a compressed message may decompress to, taken before it is, if there is room now. */
  holdDecoded(bytes: number): boolean;
  /** The message is whole and decoded: everything goes back. */
  done(): void;
}

/**
 * Meter what `stream` receives against `budget` until `done` is called (its message is whole) or it closes.
 * Must be called before grpc-js first resumes the stream (its interceptor runs in time).
 */
export function meterArrivals(stream: ServerHttp2Stream, budget: BodyBudget): Arrivals {
  // Aborts a wait for bytes once the message is whole or the stream gone: a grant after close would leak.
  const stop = new AbortController();
  const account = budget.open(nameOf(stream.session), () => stream.close(constants.NGHTTP2_CANCEL));
  let received = 0;
  let taken = 0;
  let finished = false;
  let waiting = false;
  const done = () => {
    if (finished) return;
    finished = true;
    stream.off('data', onData);
    stop.abort();
    account.close();
  };
  // The first message's length, from its 5-byte prefix: its room is asked for at once, not chunk by chunk
  // (asking per 16 KB frame, a request got one frame's room per round of a flood's evictions: 54 s).
  let head = Buffer.alloc(0);
  let declared = 0;
  const onData = (chunk: Buffer) => {
    account.arrived(chunk.length);
    received += chunk.length;
    if (head.length < 5) {
      head = Buffer.concat([head, chunk.subarray(0, 5 - head.length)]);
      if (head.length === 5) declared = Math.min(5 + head.readUInt32BE(1), budget.limits.perClient);
    }
    const over = Math.max(received, declared) - budget.limits.freeBytes - taken;
    if (over <= 0) return;
    taken += over;
    if (waiting) return; // already paused for an earlier chunk: this one's bytes are asked for with it below
    waiting = true;
    stream.pause();
    const ask = (bytes: number): Promise<void> =>
      account.take(bytes, stop.signal).then(() => {
        // Chunks that came while it waited (already in flight when paused) are asked for too.
        const more = taken - asked;
        asked = taken;
        return more > 0 ? ask(more) : undefined;
      });
    let asked = taken;
    ask(over).then(
      () => {
        waiting = false;
        if (!finished && !stream.destroyed) stream.resume();
      },
      () => {},
    );
  };
  stream.on('data', onData);
  stream.once('close', done);
  return {
    holdDecoded: (bytes) => {
      account.complete(); // all it sends has arrived: it is no slow client
      return account.tryTake(bytes);
    },
    done,
  };
}
