/**
 * Connections a flood can't use to lock everyone else out. Node's own `maxConnections` refuses the
 * newest connection once full, so a thousand silent sockets made health probes fail; here the server
 * makes room by closing the *least recently active* connection instead — the one whose last byte in or
 * out is oldest: a silent socket, headers or a body that stopped arriving, a kept-alive one between
 * requests, a reader that stopped reading. A client that sends its request at once (a probe, a browser)
 * gets in; a stalled one is the first to go. Limits hold per remote address too, so one client can't take
 * the whole budget (behind a proxy every client shares one address: raise `perClient`). One socket may
 * have at most `pipelined` requests in flight (HTTP/1.1 pipelining would otherwise queue thousands of
 * answers for a client that never reads them): past that, it is closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections at once. */
  total: number;
  /** Open connections from one remote address at once. */
  perClient: number;
  /** Requests in flight on one connection (pipelined) at once. */
  pipelined: number;
}

export const CONNECTION_DEFAULTS: ConnectionLimits = { total: 1024, perClient: 256, pipelined: 16 };

interface Tracked {
  address: string;
  /** Requests being read or answered on it. */
  inFlight: number;
}

export interface ConnectionGuard {
  /** Connections closed to make room, and for pipelining past the limit (for tests and logs). */
  readonly evicted: number;
  readonly overPipelined: number;
}

export function guardConnections(server: Server, limits: ConnectionLimits = CONNECTION_DEFAULTS): ConnectionGuard {
  // Insertion order is activity order: a socket that moves a byte is moved to the end.
  const byActivity = new Map<Socket, Tracked>();
  const perClient = new Map<string, number>();
  const counts = { evicted: 0, overPipelined: 0 };

  const touch = (socket: Socket) => {
    const t = byActivity.get(socket);
    if (!t) return;
    byActivity.delete(socket);
    byActivity.set(socket, t);
  };
  const forget = (socket: Socket) => {
    const t = byActivity.get(socket);
    if (!t) return;
    byActivity.delete(socket);
    const n = (perClient.get(t.address) ?? 1) - 1;
    if (n > 0) perClient.set(t.address, n);
    else perClient.delete(t.address);
  };
  /** Close the least recently active connection (of `address`, when given). */
  const makeRoom = (address?: string) => {
    for (const [socket, t] of byActivity) {
      if (address !== undefined && t.address !== address) continue;
      counts.evicted++;
      forget(socket);
      socket.destroy();
      return;
    }
  };

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    if ((perClient.get(address) ?? 0) >= limits.perClient) makeRoom(address);
    if (byActivity.size >= limits.total) makeRoom();
    byActivity.set(socket, { address, inFlight: 0 });
    perClient.set(address, (perClient.get(address) ?? 0) + 1);
    socket.on('data', () => touch(socket));
    socket.on('drain', () => touch(socket));
    socket.once('close', () => forget(socket));
  });
  // An HTTP server's requests (a plain net.Server, as in front of gRPC, has none).
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket as Socket;
    const t = byActivity.get(socket);
    if (!t) return;
    t.inFlight++;
    if (t.inFlight > limits.pipelined) {
      counts.overPipelined++;
      forget(socket);
      socket.destroy();
      return;
    }
    response.once('close', () => {
      t.inFlight--;
      touch(socket);
    });
  });
  return {
    get evicted() {
      return counts.evicted;
    },
    get overPipelined() {
      return counts.overPipelined;
    },
  };
}
