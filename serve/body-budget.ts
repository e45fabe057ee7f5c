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
  account: Account;
  bytes: number;
  grant: () => void;
}

interface Account {
  address: string;
  /** Opening order: the oldest body of a deadlocked address (or of all) is the one let through. */
  seq: number;
  held: number;
  waiting: boolean;
}

/** One body's share of a budget: `take` as chunks arrive, `close` when the body is read (all goes back). */
export interface BodyAccount {
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

/**
 * Bodies take their bytes chunk by chunk, so a trickle holds only what it sent — but bodies that each hold
 * part and all wait for more would wait on each other until the request timeout (64 connections of one
 * address posting 700 KB each: every one 408 after 30 s, and their bytes held from everyone meanwhile).
 * So when every body holding bytes (of an address, or of all) is waiting, none of them reading, the oldest
 * waiting body of that address (of all) takes its chunk past the limit it waits for: one body at a time
 * runs over, by at most one body's size, and every body finishes.
 */
export class BodyBudget {
  private used = 0;
  private readonly byClient = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private readonly holders = new Set<Account>();
  private opened = 0;

  constructor(
    readonly limits: BodyBudgetLimits = BODY_BUDGET_DEFAULTS,
    /** Told the bytes held and the bodies waiting after every change (for the metrics gauges). */
    private readonly onChange: (bytes: number, waiting: number) => void = () => {},
  ) {}

  /** An account for one body from `address`. */
  open(address: string): BodyAccount {
    const account: Account = { address, seq: this.opened++, held: 0, waiting: false };
    return {
      take: (bytes, signal) => this.take(account, bytes, signal),
      close: () => this.close(account),
    };
  }

  /** Take `bytes` for `account`, once they fit; rejects if `signal` aborts first (the client went away). */
  private take(account: Account, bytes: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        account,
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
        account.waiting = false;
        this.grantNext(); // with one waiter fewer, the others may be the stuck ones now
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      account.waiting = true;
      this.waiting.push(waiter);
      this.grantNext();
    });
  }

  /** The body is read (or gone): everything it took goes back. */
  private close(account: Account): void {
    this.holders.delete(account);
    if (account.held <= 0) return;
    this.used -= account.held;
    const left = (this.byClient.get(account.address) ?? account.held) - account.held;
    if (left > 0) this.byClient.set(account.address, left);
    else this.byClient.delete(account.address);
    account.held = 0;
    this.grantNext();
  }

  private fits(w: Waiter, stuck: { all: boolean; addresses: Set<string> }, oldest: OldestWaiting): boolean {
    const { address } = w.account;
    if (stuck.all && oldest.all === w) return true;
    // A single chunk larger than a whole budget still goes through alone, or it would wait forever.
    const client = this.byClient.get(address) ?? 0;
    return (
      (this.used + w.bytes <= this.limits.total || this.used === 0) &&
      (client + w.bytes <= this.limits.perClient ||
        client === 0 ||
        (stuck.addresses.has(address) && oldest.byAddress.get(address) === w))
    );
  }

  /** Whether every body holding bytes is waiting, in all and per address (none of them will give any back). */
  private stuck(): { all: boolean; addresses: Set<string> } {
    const reading = new Set<string>();
    const holding = new Set<string>();
    let anyReading = false;
    for (const h of this.holders) {
      holding.add(h.address);
      if (!h.waiting) {
        reading.add(h.address);
        anyReading = true;
      }
    }
    const addresses = new Set([...holding].filter((a) => !reading.has(a)));
    return { all: this.holders.size > 0 && !anyReading, addresses };
  }

  private grantNext(): void {
    let stuck = this.stuck();
    let oldest = oldestWaiting(this.waiting);
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i] as Waiter;
      if (!this.fits(w, stuck, oldest)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.used += w.bytes;
      this.byClient.set(w.account.address, (this.byClient.get(w.account.address) ?? 0) + w.bytes);
      w.account.held += w.bytes;
      w.account.waiting = false;
      this.holders.add(w.account);
      w.grant();
      // A grant makes its body a reader again: recompute who is stuck before letting anyone else over.
      stuck = this.stuck();
      oldest = oldestWaiting(this.waiting);
    }
    this.onChange(this.used, this.waiting.length);
  }
}

interface OldestWaiting {
  all: Waiter | undefined;
  byAddress: Map<string, Waiter>;
}

/** The waiter of the oldest body, in all and per address. */
function oldestWaiting(waiting: Waiter[]): OldestWaiting {
  let all: Waiter | undefined;
  const byAddress = new Map<string, Waiter>();
  for (const w of waiting) {
    if (!all || w.account.seq < all.account.seq) all = w;
    const current = byAddress.get(w.account.address);
    if (!current || w.account.seq < current.account.seq) byAddress.set(w.account.address, w);
  }
  return { all, byAddress };
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
