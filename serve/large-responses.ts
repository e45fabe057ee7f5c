/**
 * Big bodies (an MNIST split is 47 MB, a model file a few MiB) must not let clients that never read
 * exhaust memory or connections:
 *   - the body is a view of bytes the server already holds (the cached dataset, the loaded model file),
 *     never a per-request copy, streamed in 256 KiB slices;
 *   - a response that makes no progress for `writeTimeoutMs` has its socket destroyed (Node's socket
 *     timer restarts at each completed write, so a slow reader that keeps reading is never cut off);
 *   - at most `maxConcurrent` large bodies are in flight; beyond that, 503 with Retry-After.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { errorBody } from './errors.ts';

export interface LargeResponseLimits {
  /** A response whose socket accepts no bytes for this long is cut off (ms). */
  writeTimeoutMs: number;
  /** Large bodies (MNIST splits, model files) in flight at once; more get 503. */
  maxConcurrent: number;
}

/** 30 s without a byte taken is a client that stopped reading, not a slow link. */
export const LARGE_RESPONSE_DEFAULTS: LargeResponseLimits = { writeTimeoutMs: 30_000, maxConcurrent: 16 };

/** Seconds a refused client is asked to wait. */
const RETRY_AFTER_S = 5;
/**
 * Each completed write restarts the socket timer, so a reader is kept while it takes a slice per
 * `writeTimeoutMs` (256 KiB per 30 s: 9 KB/s, slower than any real link).
 */
const SLICE_BYTES = 256 * 1024;

const outgoingOf = (c: Context) => (c.env as Partial<HttpBindings> | undefined)?.outgoing;

/** Destroy the socket of any response (large or not) that stops moving for `ms` while being written. */
export function writeTimeout(ms: number): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const outgoing = outgoingOf(c);
    // Set after the handler: only the writing is timed. Node replaces it with keepAliveTimeout once sent.
    outgoing?.setTimeout(ms, () => outgoing.destroy());
  };
}

/** The bytes of `parts`, one after the other, as slice-sized views: nothing is copied, at most a slice is queued. */
export function viewStream(parts: readonly Uint8Array[]): ReadableStream<Uint8Array<ArrayBuffer>> {
  let part = 0;
  let offset = 0;
  return new ReadableStream(
    {
      pull(controller) {
        while (part < parts.length && offset >= (parts[part] as Uint8Array).byteLength) {
          part++;
          offset = 0;
        }
        const current = parts[part];
        if (!current) return controller.close();
        controller.enqueue(current.subarray(offset, offset + SLICE_BYTES) as Uint8Array<ArrayBuffer>);
        offset += SLICE_BYTES;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Counts large bodies in flight, each until its response closes (sent, or the client gone). */
export class LargeResponses {
  private active = 0;
  constructor(readonly max: number) {}

  /**
   * Take a slot for this request's response, or answer 503 (with Retry-After) when all are taken.
   * Outside Node (`app.request` in tests) there is no socket to wait for, and nothing is counted.
   */
  admit(c: Context): Response | undefined {
    const outgoing = outgoingOf(c);
    if (!outgoing) return undefined;
    if (this.active >= this.max) {
      return c.json(
        errorBody('busy', `${this.max} large downloads are in progress; retry in ${RETRY_AFTER_S} s`, c.req.path),
        503,
        { 'Retry-After': String(RETRY_AFTER_S) },
      );
    }
    // A client gone before its handler ran: 'close' has fired already and would never free the slot.
    if (outgoing.destroyed) return undefined;
    this.active++;
    outgoing.once('close', () => this.active--);
    return undefined;
  }

  get inFlight(): number {
    return this.active;
  }
}
