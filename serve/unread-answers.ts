/**
 * Answers written but not yet taken by their sockets hold the server's memory: a client that sends requests
 * and never reads their answers (a few MB of JSON each) held +1.2 GiB from one address in an outside attack,
 * with every answer under every other limit. So inference answers are bounded by what is still unsent: a
 * request is refused (503 `unread_answers`, Retry-After) while its client's sockets, or all sockets, hold
 * more than their share of unsent bytes — before its body is read and the model runs, and again when its
 * answer is ready (requests admitted together each see an empty backlog; their answers then go out one by
 * one). The write timeout (large-responses.ts) frees the sockets of clients that stopped reading for good.
 */
import type { Socket } from 'node:net';

export interface UnreadAnswerLimits {
  /** Unsent answer bytes one client address may hold (behind a proxy every client shares one: raise it). */
  perClient: number;
  /** Unsent answer bytes all clients together may hold. */
  total: number;
}

export const UNREAD_ANSWER_DEFAULTS: UnreadAnswerLimits = { perClient: 32 * 1024 * 1024, total: 256 * 1024 * 1024 };

export class UnreadAnswers {
  private readonly byClient = new Map<string, Set<Socket>>();

  constructor(readonly limits: UnreadAnswerLimits) {}

  /** Count `socket`'s unsent bytes for `address` until it closes. */
  track(socket: Socket, address: string): void {
    const sockets = this.byClient.get(address) ?? new Set<Socket>();
    if (sockets.has(socket)) return;
    this.byClient.set(address, sockets);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.byClient.get(address) === sockets) this.byClient.delete(address);
    });
  }

  /** Bytes written to `address`'s sockets, and to all, that they have not sent yet. */
  unsent(address: string): { client: number; total: number } {
    let client = 0;
    let total = 0;
    for (const [owner, sockets] of this.byClient) {
      let bytes = 0;
      for (const socket of sockets) bytes += socket.writableLength;
      total += bytes;
      if (owner === address) client = bytes;
    }
    return { client, total };
  }

  /** Why `address` may not be given another answer now, or undefined when it may. */
  refusal(address: string): string | undefined {
    const { client, total } = this.unsent(address);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    if (client > this.limits.perClient)
      return `${mib(client)} of answers to this client are still unread (at most ${mib(this.limits.perClient)}): read them, then retry`;
    if (total > this.limits.total)
      return `${mib(total)} of answers are still unread by clients (at most ${mib(this.limits.total)}): retry`;
    return undefined;
  }
}
