/**
 * Connections a flood can't use to lock everyone else out. Node's own `maxConnections` refuses the
 * newest connection once full, so a thousand silent sockets made health probes fail; here the server
 * makes room by closing the *oldest idle* connection instead — one that has not finished sending its
 * headers, or a kept-alive one between requests. A client that sends its request at once (a probe, a
 * browser) gets in; a silent one is the first to go. Limits hold per remote address too, so one client
 * can't take the whole budget (behind a proxy every client shares one address: raise `perClient`).
 * Busy connections (a request being read or answered) are never closed for room: when all are busy the
 * new connection is refused.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections at once. */
  total: number;
  /** Open connections from one remote address at once. */
  perClient: number;
}

export const CONNECTION_DEFAULTS: ConnectionLimits = { total: 1024, perClient: 256 };

interface Tracked {
  address: string;
  /** Requests being read or answered on it (HTTP/1.1 pipelining can make this more than 1). */
  busy: number;
}

export interface ConnectionGuard {
  /** Connections closed to make room, and refused because every one was busy (for tests and logs). */
  readonly evicted: number;
  readonly refused: number;
}

export function guardConnections(server: Server, limits: ConnectionLimits = CONNECTION_DEFAULTS): ConnectionGuard {
  // Insertion order is age order: a socket that turns idle again is moved to the end.
  const idle = new Map<Socket, Tracked>();
  const all = new Map<Socket, Tracked>();
  const perClient = new Map<string, number>();
  const counts = { evicted: 0, refused: 0 };

  const oldestIdle = (address?: string): Socket | undefined => {
    for (const [socket, t] of idle) if (address === undefined || t.address === address) return socket;
    return undefined;
  };
  const makeRoom = (address?: string): boolean => {
    const victim = oldestIdle(address);
    if (!victim) return false;
    counts.evicted++;
    forget(victim);
    victim.destroy();
    return true;
  };
  const forget = (socket: Socket) => {
    const t = all.get(socket);
    if (!t) return;
    all.delete(socket);
    idle.delete(socket);
    const n = (perClient.get(t.address) ?? 1) - 1;
    if (n > 0) perClient.set(t.address, n);
    else perClient.delete(t.address);
  };

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    if ((perClient.get(address) ?? 0) >= limits.perClient && !makeRoom(address)) {
      counts.refused++;
      return void socket.destroy();
    }
    if (all.size >= limits.total && !makeRoom()) {
      counts.refused++;
      return void socket.destroy();
    }
    const t: Tracked = { address, busy: 0 };
    all.set(socket, t);
    idle.set(socket, t);
    perClient.set(address, (perClient.get(address) ?? 0) + 1);
    socket.once('close', () => forget(socket));
  });
  server.on('request', (request, response) => {
    const socket = request.socket as Socket;
    const t = all.get(socket);
    if (!t) return;
    t.busy++;
    idle.delete(socket);
    response.once('close', () => {
      t.busy--;
      if (t.busy === 0 && all.has(socket) && !socket.destroyed) idle.set(socket, t);
    });
  });
  return {
    get evicted() {
      return counts.evicted;
    },
    get refused() {
      return counts.refused;
    },
  };
}
