/**
 * Answers a client has not taken hold the server's memory: a client that sent requests and never read their
 * answers (a few MB of JSON each) held +1.2 GiB from one address in an outside attack, with every answer
 * under every other limit. So inference answers are bounded by what is unsent — written to a client's sockets,
 * or being computed (at its expected size, reserved while the model runs). Pipelined requests wait for the
 * answer before them to be sent (connection-turns.ts), so no answer waits behind another on one connection.
 * A request is refused (503 `unread_answers`, Retry-After) while its client, or all clients, hold more than
 * their share: on arrival, before its model runs, and before its answer is built. Over the total, a client within its own share
 * takes room from the address holding most on connections that stopped taking bytes (those are closed), so
 * clients that never read can't refuse everyone — and a client reading a large answer is never cut for it
 * (an outside attack: 32 honest readers of 5 MB answers had connections reset mid-answer, and beside 64
 * never-reading addresses the readers were the ones cut). The write timeout (large-responses.ts) frees the
 * sockets of clients that stopped reading.
 */
import type { Socket } from 'node:net';
import type { Context } from 'hono';
import { closing, EvictedAnswers } from './evicted-answers.ts';

export interface UnreadAnswerLimits {
  /** Unsent answer bytes one client address may hold (behind a proxy every client shares one: raise it). */
  perClient: number;
  /** Unsent answer bytes all clients together may hold. */
  total: number;
}

export const UNREAD_ANSWER_DEFAULTS: UnreadAnswerLimits = { perClient: 32 * 1024 * 1024, total: 128 * 1024 * 1024 };

/** A connection that has taken none of its bytes for this long has stopped reading (a slow link takes some). */
export const STALLED_MS = 3000;

/** When a connection last took bytes, as far as the budget has looked. */
interface Progress {
  mark: string;
  since: number;
}

/**
 * What changes whenever `socket`'s client takes bytes: the writes completed, and the bytes of the one under
 * way not yet in the kernel (libuv's queue; Node's own counts keep a 5 MB answer whole until all of it has
 * gone, so a reader halfway through one showed no progress).
 */
const progressMark = (socket: Socket) =>
  `${socket.bytesWritten - socket.writableLength}/${(socket as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize}`;

/** A client over its budget: answered 503 `unread_answers` with Retry-After (app.ts). */
export class UnreadAnswersError extends Error {
  override name = 'UnreadAnswersError';
}

const CHECK = 'unreadAnswersCheck';

/** What the routes ask through `refuseIfUnread` and `reserveAnswer`, for the request's client. */
export interface AnswerBudget {
  refusal(): string | undefined;
  reserve(bytes: number): { release: () => void } | { refusal: string };
}

/** Let the routes ask about `c`'s client (app.ts's middleware). */
export const offerCheck = (c: Context, budget: AnswerBudget) => c.set(CHECK as never, budget as never);

const budgetOf = (c: Context) => c.get(CHECK as never) as AnswerBudget | undefined;

/**
 * Hold the expected size of the answer `c` is about to compute, or throw UnreadAnswersError: requests
 * pipelined or sent at once are refused before their model runs once their answers would not fit (an outside
 * attack's 64 connections × 16 pipelined requests ran every one). Call the returned function once the
 * answer is built.
 */
export function reserveAnswer(c: Context, bytes: number): () => void {
  const held = budgetOf(c)?.reserve(bytes);
  if (held && 'refusal' in held) throw new UnreadAnswersError(held.refusal);
  return held?.release ?? (() => {});
}

/**
 * Throws UnreadAnswersError when the request's client is over its budget now: called by an inference route
 * once its outputs are in and before it builds the answer, so that an answer that would be refused is never
 * built (5 MB of JSON each: an outside attack's pipelined requests, all admitted at once, built hundreds).
 */
export function refuseIfUnread(c: Context): void {
  const reason = budgetOf(c)?.refusal();
  if (reason) throw new UnreadAnswersError(reason);
}

/** What one client address holds: its sockets (bytes written, not sent) and the answers being computed. */
interface Held {
  /** Answers being computed, at their expected size, until they are written (then their bytes count). */
  reserved: number;
  /** Bumped when the address is evicted: reservations made before then are void (their requests are gone). */
  evictions: number;
  sockets: Set<Socket>;
}

export class UnreadAnswers {
  private readonly byClient = new Map<string, Held>();
  private readonly progress = new WeakMap<Socket, Progress>();

  constructor(
    readonly limits: UnreadAnswerLimits,
    private readonly evicted = new EvictedAnswers(),
    /** Milliseconds, for telling stalled connections (a test may pass its own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Count `socket`'s unsent bytes for `address` until it closes. */
  track(socket: Socket, address: string): void {
    const entry = this.byClient.get(address) ?? { reserved: 0, evictions: 0, sockets: new Set<Socket>() };
    this.byClient.set(address, entry);
    if (entry.sockets.has(socket)) return;
    entry.sockets.add(socket);
    this.progress.set(socket, { mark: progressMark(socket), since: this.now() });
    socket.once('close', () => {
      entry.sockets.delete(socket);
      if (entry.sockets.size === 0 && entry.reserved === 0 && this.byClient.get(address) === entry)
        this.byClient.delete(address);
    });
  }

  /**
   * Hold `bytes` for an answer `address` is about to be given (its model run is next), or say why not; the
   * returned function gives them back (once the answer is built: from then its own bytes count).
   */
  reserve(address: string, bytes: number): { release: () => void } | { refusal: string } {
    const refusal = this.refusal(address, bytes);
    if (refusal) return { refusal };
    const held = this.byClient.get(address);
    if (!held) return { release: () => {} }; // never tracked (no socket): nothing to hold against
    held.reserved += bytes;
    const evictions = held.evictions;
    let released = false;
    return {
      release: () => {
        if (released || held.evictions !== evictions) return;
        released = true;
        held.reserved -= bytes;
      },
    };
  }

  /** Bytes of answers to `address`, and to all, that are expected, or written and not sent. */
  unsent(address: string): { client: number; total: number } {
    let client = 0;
    let total = 0;
    for (const [owner, held] of this.byClient) {
      const bytes = this.heldBy(held);
      total += bytes;
      if (owner === address) client = bytes;
    }
    return { client, total };
  }

  /**
   * Why `address` may not be given another answer (of `bytes` more) now, or undefined when it may; over the
   * total, first makes room by evicting the address holding most (if `address` is within its own share).
   */
  refusal(address: string, bytes = 0): string | undefined {
    let unsent = this.unsent(address);
    // Over the total, a client holding less than its share takes room from the one holding most (its
    // connections are closed, their answers dropped): clients that never read can't refuse everyone else —
    // while the answers evicted before are still in memory (evicted-answers.ts): then the request waits.
    const mayEvict = this.evicted.bytes < this.limits.total;
    if (mayEvict && unsent.total + bytes > this.limits.total && unsent.client + bytes <= this.limits.perClient) {
      this.evictLargestBut(address);
      unsent = this.unsent(address);
    }
    const client = unsent.client + bytes;
    const total = unsent.total + bytes;
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    // A client holding nothing may have any one answer (as an empty queue takes any one request).
    if (client > this.limits.perClient && unsent.client > 0)
      return `${mib(client)} of answers to this client are still unread (at most ${mib(this.limits.perClient)}): read them, then retry`;
    if (total > this.limits.total && unsent.total > 0)
      return `${mib(total)} of answers are still unread by clients (at most ${mib(this.limits.total)}): retry`;
    return undefined;
  }

  /** Bytes `held` expects, or has written and not sent on connections still open. */
  private heldBy(held: Held): number {
    return held.reserved + this.unread(held);
  }

  /** Bytes `held` has written and not sent, on connections still open: answers left unread. */
  private unread(held: Held): number {
    let bytes = 0;
    for (const socket of held.sockets) if (!socket.destroyed) bytes += socket.writableLength;
    return bytes;
  }

  /**
   * Close the stalled connections (STALLED_MS without taking a byte) of the address leaving the most answers
   * unread on them, other than `spared`; their bytes count as evicted until collected. Answers still being
   * computed (reservations) don't count: a client waiting for its answer is not one that stopped reading
   * (counting them, two clients evicted each other in turn), nor do connections taking their answers.
   */
  private evictLargestBut(spared: string): void {
    let largest: { held: Held; stalled: Socket[] } | undefined;
    let most = 0;
    const now = this.now();
    for (const [owner, held] of this.byClient) {
      if (owner === spared) continue;
      const stalled = [...held.sockets].filter((socket) => this.hasStalled(socket, now));
      const bytes = stalled.reduce((sum, socket) => sum + socket.writableLength, 0);
      if (bytes > most) [largest, most] = [{ held, stalled }, bytes];
    }
    if (!largest) return;
    const { held, stalled } = largest;
    this.evicted.hold(most, Promise.all(stalled.map((socket) => closing(socket, socket.closed))));
    for (const socket of stalled) socket.destroy();
    // Its requests under way are gone with their connections; only when all of them are.
    if (stalled.length === held.sockets.size) {
      held.reserved = 0;
      held.evictions++;
    }
  }

  /** Whether `socket` holds bytes it has taken none of for STALLED_MS. */
  private hasStalled(socket: Socket, now: number): boolean {
    if (socket.destroyed || socket.writableLength === 0) return false;
    const mark = progressMark(socket);
    const seen = this.progress.get(socket);
    if (!seen || seen.mark !== mark) {
      this.progress.set(socket, { mark, since: now });
      return false;
    }
    return now - seen.since >= STALLED_MS;
  }
}
