/**
 * Memory for request bodies being read, bounded by bytes rather than by requests: a body is read into
 * memory whole, so uploads stalled midway must not add up without limit — yet a thousand uploads trickling
 * in at a byte a second hold almost nothing and must not starve anyone (a count of "slots" let four
 * addresses' trickles take every slot). Every body reads its first `freeBytes` at once (the size of any
 * request but a large image or an upload); past that, each chunk takes bytes from a shared budget, in
 * all and per client address, waiting while it is spent — and while it waits, Node stops reading that
 * socket. Bytes go back when the body has been read. Worst case: connections × freeBytes + total.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

export interface BodyBudgetLimits {
  /** Bytes every body may hold without asking. */
  freeBytes: number;
  /** Bytes past their free part that bodies being read may hold, in all. */
  total: number;
  /** … and those of one client address. */
  perClient: number;
}

export const BODY_BUDGET_DEFAULTS: BodyBudgetLimits = {
  freeBytes: 64 * 1024,
  total: 64 * 1024 * 1024,
  perClient: 16 * 1024 * 1024,
};

interface Waiter {
  address: string;
  bytes: number;
  grant: () => void;
}

export class BodyBudget {
  private used = 0;
  private readonly byClient = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly limits: BodyBudgetLimits = BODY_BUDGET_DEFAULTS,
    /** Told the bytes held and the bodies waiting after every change (for the metrics gauges). */
    private readonly onChange: (bytes: number, waiting: number) => void = () => {},
  ) {}

  /** Take `bytes` for `address`, once they fit; rejects if `signal` aborts first (the client went away). */
  take(address: string, bytes: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        address,
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(waiter);
        if (index < 0) return;
        this.waiting.splice(index, 1);
        this.onChange(this.used, this.waiting.length);
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.grantNext();
    });
  }

  /** Give back `bytes` that `address` took. */
  give(address: string, bytes: number): void {
    if (bytes <= 0) return;
    this.used -= bytes;
    const left = (this.byClient.get(address) ?? bytes) - bytes;
    if (left > 0) this.byClient.set(address, left);
    else this.byClient.delete(address);
    this.grantNext();
  }

  private fits(w: Waiter): boolean {
    // A single chunk larger than a whole budget still goes through alone, or it would wait forever.
    const client = this.byClient.get(w.address) ?? 0;
    return (
      (this.used + w.bytes <= this.limits.total || this.used === 0) &&
      (client + w.bytes <= this.limits.perClient || client === 0)
    );
  }

  private grantNext(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i] as Waiter;
      if (!this.fits(w)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.used += w.bytes;
      this.byClient.set(w.address, (this.byClient.get(w.address) ?? 0) + w.bytes);
      w.grant();
    }
    this.onChange(this.used, this.waiting.length);
  }
}

/**
 * One body read at a time (model uploads: two large ones, each holding part of a budget too small for both,
 * would wait on each other until the request timeout). A waiter whose client hangs up leaves the queue.
 */
export class OneAtATime {
  private held = false;
  private readonly queue: (() => void)[] = [];

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.held) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const index = this.queue.indexOf(go);
          if (index >= 0) this.queue.splice(index, 1);
          reject(signal?.reason ?? new Error('aborted'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.queue.push(go);
      });
    }
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.held = false;
    };
  }
}

/** The remote address of a request (one bucket for requests made in-process, as tests and `app.request` do). */
export function remoteAddress(c: Context): string {
  return (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket?.remoteAddress ?? 'local';
}
