/**
 * gRPC answers not yet taken by their clients, bounded as HTTP's are (unread-answers.ts). grpc-js hands an
 * answer to Node's HTTP/2 stream at once and ends the call; the bytes then wait in the stream while the
 * client's flow-control window is shut — a client that pauses its streams never opens it (an outside attack:
 * 128 connections × 16 paused streams held +0.7–0.8 GiB). So each ModelInfer holds its answer's expected
 * size from before its model runs until its stream closes (the answer sent, or the call cut), per HTTP/2
 * session (one client connection, through the front) and in all. A call past its session's share is refused;
 * past the total, a session within its share first makes room by closing the session leaving the most
 * answers unsent (answers still being computed don't count: a client waiting for its answer is not one that
 * stopped reading).
 */
import type { Http2Session } from 'node:http2';
import { closing, EvictedAnswers } from '../evicted-answers.ts';
import { clientAddress } from './client-address.ts';
import { sessionName } from './session-name.ts';

export interface UnsentAnswerLimits {
  /** Answer bytes one connection may hold (computing, or sent and not yet taken). */
  perSession: number;
  /** … and all connections together. */
  total: number;
}

export const UNSENT_ANSWER_DEFAULTS: UnsentAnswerLimits = { perSession: 16 * 1024 * 1024, total: 64 * 1024 * 1024 };

/** A session's answers: those being computed and those handed to the stream, not yet taken. */
interface Account {
  computing: number;
  unsent: number;
  /** Closes the client's connection (its calls are cut, their streams close); settles once it has. */
  close?: () => Promise<void>;
}

/** One call's answer: `hold` before its model runs, `handedOver` once written, `end` when its stream closes. */
export interface CallAnswer {
  /** Whose call it is: its client's address, else its connection's name (the batch queue's shares count by it). */
  readonly client: string;
  /** Hold `bytes` for the answer, or say why not. */
  hold(bytes: number): string | undefined;
  handedOver(): void;
  end(): void;
}

export class UnsentAnswers {
  private readonly bySession = new Map<object, Account>();

  constructor(
    readonly limits: UnsentAnswerLimits = UNSENT_ANSWER_DEFAULTS,
    private readonly evicted = new EvictedAnswers(),
  ) {}

  /** The answer of a call on `session` (undefined where grpc-js did not show the session: one shared account). */
  open(session: Http2Session | undefined): CallAnswer {
    const key: object = session ?? this;
    let held = 0;
    let handed = false;
    const account = () => {
      let a = this.bySession.get(key);
      if (!a) {
        a = { computing: 0, unsent: 0, close: session ? () => closeSession(session) : undefined };
        this.bySession.set(key, a);
      }
      return a;
    };
    const release = () => {
      const a = this.bySession.get(key);
      if (!a || held === 0) return;
      if (handed) a.unsent -= held;
      else a.computing -= held;
      held = 0;
      if (a.computing <= 0 && a.unsent <= 0) this.bySession.delete(key);
    };
    return {
      client: clientAddress(session) ?? sessionName(session),
      hold: (bytes) => {
        const refusal = this.refusal(key, bytes);
        if (refusal) return refusal;
        release();
        held = bytes;
        handed = false;
        account().computing += bytes;
        return undefined;
      },
      handedOver: () => {
        const a = this.bySession.get(key);
        if (!a || handed || held === 0) return;
        a.computing -= held;
        a.unsent += held;
        handed = true;
      },
      end: release,
    };
  }

  /** Bytes held by `key`'s session, and by all. */
  held(key?: object): { session: number; total: number } {
    let session = 0;
    let total = 0;
    for (const [owner, a] of this.bySession) {
      total += a.computing + a.unsent;
      if (owner === key) session = a.computing + a.unsent;
    }
    return { session, total };
  }

  private refusal(key: object, bytes: number): string | undefined {
    let held = this.held(key);
    // … while the answers evicted before are still in memory (evicted-answers.ts): then the call waits.
    const mayEvict = this.evicted.bytes < this.limits.total;
    if (mayEvict && held.total + bytes > this.limits.total && held.session + bytes <= this.limits.perSession) {
      this.closeLargestBut(key);
      held = this.held(key);
    }
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    // A connection holding nothing may have any one answer (as an empty queue takes any one request).
    if (held.session + bytes > this.limits.perSession && held.session > 0)
      return `${mib(held.session + bytes)} of answers on this connection would be unsent (at most ${mib(this.limits.perSession)}): read them, then retry`;
    if (held.total + bytes > this.limits.total && held.total > 0)
      return `${mib(held.total + bytes)} of answers would be unsent to clients (at most ${mib(this.limits.total)}): retry`;
    return undefined;
  }

  /**
   * Close the connection leaving the most answers unsent, other than `spared`'s: its bytes count as evicted
   * until they are free.
   */
  private closeLargestBut(spared: object): void {
    let largest: [object, Account] | undefined;
    for (const entry of this.bySession) {
      const [owner, a] = entry;
      if (owner === spared || !a.close || a.unsent <= 0) continue;
      if (!largest || a.unsent > largest[1].unsent) largest = entry;
    }
    if (!largest) return;
    const [owner, a] = largest;
    this.bySession.delete(owner);
    if (a.close) this.evicted.hold(a.unsent + a.computing, a.close());
  }
}

function closeSession(session: Http2Session): Promise<void> {
  const closed = closing(session, session.destroyed);
  session.destroy();
  return closed;
}
