/**
 * Memory for request bodies being read, bounded by bytes rather than by requests: a body is read into
 * memory whole, so uploads stalled midway must not add up without limit — yet a thousand uploads trickling
 * in at a byte a second hold almost nothing and must not starve anyone (a count of "slots" let four
 * addresses' trickles take every slot). Every body reads its first `freeBytes` at once (the size of any
 * request but a large image or an upload); past that, each chunk takes bytes from a shared budget, in
 * all and per client address, waiting while it is spent — and while it waits, Node stops reading that
 * socket. Bytes go back when the body has been read. Worst case: connections × freeBytes + total.
 *
 * A body that holds bytes but hardly sends more gives them back when others wait for them: bodies stalled
 * midway from four addresses filled the total, and a fifth address's large body waited for the request
 * timeout (30 s). While some body waits, one that is reading from its client and has received less than
 * `minBytesPerSecond` over the last `slowWindowMs` (time it spent waiting on us not counted) is evicted:
 * its reader answers 408 and its bytes go back.
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
  /** While others wait: the window over which a reading body's pace is judged (default 5 s)… */
  slowWindowMs?: number;
  /** … and the pace under which it is evicted (default 16 KiB/s: a 1 MiB body in a minute). */
  minBytesPerSecond?: number;
}

export const BODY_BUDGET_DEFAULTS: BodyBudgetLimits = {
  freeBytes: 64 * 1024,
  total: 64 * 1024 * 1024,
  perClient: 16 * 1024 * 1024,
};
const SLOW_WINDOW_MS = 5000;
const MIN_BYTES_PER_SECOND = 16 * 1024;
/** How often slow bodies are looked for while some body waits. */
const SLOW_CHECK_MS = 250;

interface Waiter {
  account: Account;
  bytes: number;
  grant: () => void;
  /** When it began to wait (performance.now()). */
  since: number;
}

/** A pace mark: [when the mark began, its last arrival, bytes received by then]. */
type Mark = [start: number, lastArrival: number, received: number];

interface Account {
  address: string;
  /** Opening order: the oldest body of a deadlocked address (or of all) is the one let through. */
  seq: number;
  held: number;
  waiting: boolean;
  /** Bytes received from the client so far, and marks to judge its recent pace by (one per SLOW_CHECK_MS at most). */
  received: number;
  marks: Mark[];
  /** Its client has sent it all (it is being decoded or waits for a turn: not slow, whatever its pace). */
  complete: boolean;
  evict?: () => void;
}

/**
 * One body's share of a budget: `take` as chunks arrive, `arrived` for every chunk received, `complete`
 * once the client has sent it all, `close` when the body is read (all goes back).
 */
export interface BodyAccount {
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /** Take `bytes` only if they fit now, with no body waiting for room in the total; whether it did. */
  tryTake(bytes: number): boolean;
  arrived(bytes: number): void;
  complete(): void;
  close(): void;
}

/**
 * Bodies take their bytes chunk by chunk, so a trickle holds only what it sent — but bodies that each hold
 * part and all wait for more would wait on each other until the request timeout (64 connections of one
 * address posting 700 KB each: every one 408 after 30 s, and their bytes held from everyone meanwhile).
 * So when every body holding bytes (of an address, or of all) is waiting, none of them reading, the oldest
 * waiting body of that address (of all) is named its runner: it alone may go past the limit it waits for
 * (an address's runner past the address's, within the total; the runner of all past both), until it is
 * read. At most one body per address, and one in all, runs over, each by at most its own size, and every
 * body finishes. (Letting the oldest waiter through at each deadlock instead let an outside attack, which
 * made its bodies wait in turn, hold 6.6× an address's limit and 1.65× the total.)
 */
export class BodyBudget {
  private used = 0;
  private readonly byClient = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private readonly holders = new Set<Account>();
  private opened = 0;
  /** When each address was last granted bytes (a count of grants), to take turns among those holding least. */
  private readonly lastGranted = new Map<string, number>();
  private grants = 0;
  /** The one body of each deadlocked address that may go past the address's limit, until it is read. */
  private readonly runners = new Map<string, Account>();
  /** … and the one body that may go past every limit, named when every body holding bytes waits. */
  private runner: Account | undefined;
  private slowCheck: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly limits: BodyBudgetLimits = BODY_BUDGET_DEFAULTS,
    /** Told the bytes held and the bodies waiting after every change (for the metrics gauges). */
    private readonly onChange: (bytes: number, waiting: number) => void = () => {},
  ) {}

  /** An account for one body from `address`; `evict` is called if it must give its bytes back for its pace. */
  open(address: string, evict?: () => void): BodyAccount {
    const account: Account = {
      address,
      seq: this.opened++,
      held: 0,
      waiting: false,
      received: 0,
      marks: [[performance.now(), performance.now(), 0]],
      complete: false,
      evict,
    };
    return {
      take: (bytes, signal) => this.take(account, bytes, signal),
      tryTake: (bytes) => this.tryTake(account, bytes),
      arrived: (bytes) => this.arrived(account, bytes),
      complete: () => {
        account.complete = true;
      },
      close: () => this.close(account),
    };
  }

  private arrived(account: Account, bytes: number): void {
    account.received += bytes;
    const now = performance.now();
    const last = account.marks[account.marks.length - 1] as Mark;
    // Bytes within one mark count at its last arrival (a little late: a pace is never judged slower than it is).
    if (now - last[0] >= SLOW_CHECK_MS) account.marks.push([now, now, account.received]);
    else {
      last[1] = now;
      last[2] = account.received;
    }
    const windowStart = now - (this.limits.slowWindowMs ?? SLOW_WINDOW_MS);
    // Keep one mark at or before the window's start: the base the window's bytes are counted from.
    while (account.marks.length > 1 && (account.marks[1] as Mark)[1] <= windowStart) account.marks.shift();
  }

  /** Reading from its client, holding bytes, and slower than the floor over the whole last window. */
  private isSlow(account: Account, now: number): boolean {
    if (account.waiting || account.complete || account.held === 0) return false;
    const windowMs = this.limits.slowWindowMs ?? SLOW_WINDOW_MS;
    // Judged as of its last bytes when they came within a check interval: a window ending between two chunks
    // of a steady sender holds one chunk fewer than its pace (230 B every 200 ms, 1,150 B/s, read as 920 B/s
    // when the check fell just before a chunk). A sender silent for longer is judged as of now.
    const lastArrival = (account.marks[account.marks.length - 1] as Mark)[1];
    const at = now - lastArrival < SLOW_CHECK_MS ? lastArrival : now;
    const windowStart = at - windowMs;
    const [first] = account.marks;
    if (!first || first[0] > windowStart) return false; // not judged over a whole window yet
    let base = 0;
    for (const [, lastArrival, received] of account.marks) if (lastArrival <= windowStart) base = received;
    const floor = ((this.limits.minBytesPerSecond ?? MIN_BYTES_PER_SECOND) * windowMs) / 1000;
    return account.received - base < floor;
  }

  /** While some body waits and others read: every so often, evict the slow (their readers answer 408). */
  private watchSlowBodies(): void {
    if (this.waiting.length === 0 || this.slowCheck || !this.someoneReads()) return;
    this.slowCheck = setTimeout(() => {
      this.slowCheck = undefined;
      const now = performance.now();
      for (const holder of this.holders) {
        if (!this.isSlow(holder, now) || !holder.evict) continue;
        const evict = holder.evict;
        holder.evict = undefined; // once: its reader closes the account, which gives the bytes back
        evict();
      }
      this.watchSlowBodies();
    }, SLOW_CHECK_MS);
    this.slowCheck.unref();
  }

  private someoneReads(): boolean {
    for (const holder of this.holders) if (!holder.waiting && !holder.complete) return true;
    return false;
  }

  /** Take `bytes` for `account`, once they fit; rejects if `signal` aborts first (the client went away). */
  private take(account: Account, bytes: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        account,
        bytes,
        since: performance.now(),
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

  private tryTake(account: Account, bytes: number): boolean {
    const w: Waiter = { account, bytes, since: performance.now(), grant: () => {} };
    if (this.waitsForTotal() || !this.fits(w)) return false;
    this.waiting.push(w);
    this.grantFitting();
    this.onChange(this.used, this.waiting.length);
    return true;
  }

  /** The body is read (or gone): everything it took goes back. */
  private close(account: Account): void {
    // Forgotten in bulk, once many: an address holding nothing now counts as never granted (a newcomer).
    if (this.lastGranted.size > 4096)
      for (const address of this.lastGranted.keys()) if (!this.byClient.has(address)) this.lastGranted.delete(address);
    this.holders.delete(account);
    if (this.runners.get(account.address) === account) this.runners.delete(account.address);
    if (this.runner === account) this.runner = undefined;
    if (account.held > 0) {
      this.used -= account.held;
      const left = (this.byClient.get(account.address) ?? account.held) - account.held;
      if (left > 0) this.byClient.set(account.address, left);
      else this.byClient.delete(account.address);
      account.held = 0;
    }
    this.grantNext(); // a runner that held nothing and went away leaves its place to be named again
  }

  /**
   * Whether a body waits for room in the total (not only for its own client's share): room taken at once
   * would then be room it waits for. Bodies waiting on their own client's share take nothing from others,
   * and a slow uploader's 16 streams waiting on theirs refused every other client's compressed gRPC call
   * (an outside attack).
   */
  private waitsForTotal(): boolean {
    return this.waiting.some(
      (w) => w.account !== this.runner && this.used !== 0 && this.used + w.bytes > this.limits.total,
    );
  }

  private fits(w: Waiter): boolean {
    const { account } = w;
    if (account === this.runner) return true;
    // A single chunk larger than a whole budget still goes through alone, or it would wait forever.
    const client = this.byClient.get(account.address) ?? 0;
    return (
      (this.used + w.bytes <= this.limits.total || this.used === 0) &&
      (client + w.bytes <= this.limits.perClient || client === 0 || this.runners.get(account.address) === account)
    );
  }

  /**
   * Names runners where every body holding bytes waits (of an address without a runner: its oldest waiting
   * body; of all, with no runner of all: the oldest waiting body) — none of those bodies would give any back.
   * Whether it named one.
   */
  private nameRunners(): boolean {
    const reading = new Set<string>();
    const holding = new Set<string>();
    for (const h of this.holders) {
      holding.add(h.address);
      if (!h.waiting) reading.add(h.address);
    }
    const oldest = oldestWaiting(this.waiting);
    let named = false;
    for (const address of holding)
      if (!reading.has(address) && !this.runners.has(address)) {
        const first = oldest.byAddress.get(address);
        if (first) {
          this.runners.set(address, first.account);
          named = true;
        }
      }
    if (!this.runner && this.holders.size > 0 && reading.size === 0 && oldest.all) {
      // An address's runner first, else a body of an address without one: no address gets two bodies over.
      const runners = this.waiting.filter((w) => this.runners.get(w.account.address) === w.account);
      const unrun = this.waiting.filter((w) => !this.runners.has(w.account.address));
      this.runner = (oldestWaiting(runners).all ?? oldestWaiting(unrun).all ?? oldest.all).account;
      named = true;
    }
    return named;
  }

  private grantNext(): void {
    // What fits goes first; only bodies still stuck after it get a runner (then its chunk goes too).
    this.grantFitting();
    if (this.nameRunners()) this.grantFitting();
    this.watchSlowBodies();
    this.onChange(this.used, this.waiting.length);
  }

  private grantFitting(): void {
    // Addresses holding least go first (arrival order within one): bytes that come back go to a newcomer
    // before a flood's next body (900 small gzip bodies from four addresses, each room for 1 MiB decoded,
    // kept a fifth address's 559 KiB body waiting ~13 s in an outside attack). Among those holding as
    // little, the one granted longest ago goes first, not the first to ask: a flood's hundreds of waiting
    // bodies, each holding nothing again once evicted, kept one request waiting 60 s (gRPC, where every
    // connection counts as a client).
    const held = (w: Waiter) => this.byClient.get(w.account.address) ?? 0;
    const granted = (w: Waiter) => this.lastGranted.get(w.account.address) ?? -1;
    const order =
      this.waiting.length > 1
        ? [...this.waiting].sort((a, b) => held(a) - held(b) || granted(a) - granted(b))
        : [...this.waiting];
    for (const w of order) {
      if (!this.fits(w)) continue;
      this.waiting.splice(this.waiting.indexOf(w), 1);
      this.lastGranted.set(w.account.address, ++this.grants);
      this.used += w.bytes;
      this.byClient.set(w.account.address, (this.byClient.get(w.account.address) ?? 0) + w.bytes);
      w.account.held += w.bytes;
      w.account.waiting = false;
      // Time spent waiting on us is not the client's: its pace is judged from here on.
      const now = performance.now();
      if (now - w.since >= SLOW_CHECK_MS) w.account.marks = [[now, now, w.account.received]];
      this.holders.add(w.account);
      w.grant();
    }
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
