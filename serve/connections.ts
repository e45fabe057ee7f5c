/**
 * Connections a flood can't use to lock everyone else out. Node's own `maxConnections` refuses the
 * newest connection once full, so a thousand silent sockets made health probes fail; here the server
 * makes room by closing a connection of the address holding the most, its *least recently active* one —
 * the one whose last byte in or out is oldest: a silent socket, headers or a body that stopped arriving,
 * a kept-alive one between requests, a reader that stopped reading. A client that sends its request at once (a probe, a browser)
 * gets in; a stalled one is the first to go. A connection whose request has fully arrived and is waiting
 * for the server's answer (a model at work, a decode queue) is skipped while any other can go: its
 * silence is the server's, not the client's (an outside attack's trickling flood closed exactly those, so
 * a client that had done everything right lost its answer). Limits hold per remote address too, so one client can't take
 * the whole budget (behind a proxy every client shares one address: raise `perClient`). One socket may
 * have at most `pipelined` requests in flight (HTTP/1.1 pipelining would otherwise queue thousands of
 * answers for a client that never reads them): past that, it is closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { STALLED_MS } from './unread-answers.ts';

export interface ConnectionLimits {
  /** Open connections at once. */
  total: number;
  /** Open connections from one remote address at once. */
  perClient: number;
  /** Requests in flight on one connection (pipelined) at once. */
  pipelined: number;
}

export const CONNECTION_DEFAULTS: ConnectionLimits = { total: 1024, perClient: 256, pipelined: 16 };

/** A stopping server closes a connection with no request once it has been this quiet (closeWithoutRequests). */
const QUIET_BEFORE_CLOSE_MS = 250;

/**
 * Connections the kernel may hold for us before we accept them (capped by net.core.somaxconn). Node's
 * default, 511, is less than the connections a flood keeps coming while the guard closes the stalest
 * (connections.ts): with the queue full, the kernel drops a new client's SYN and the client retries after
 * 1, 3, 7, 15 s — an outside attack's probes waited 9–20 s to be accepted under ~1,000 flooding sockets.
 */
export const LISTEN_BACKLOG = 4096;

interface Tracked {
  address: string;
  /** When the client last sent bytes, and when the server last sent it any (performance.now()). */
  lastIn: number;
  lastOut: number;
  /** When its last request's answer ended, or it opened (performance.now()): bytes in after it begin a request. */
  lastDone: number;
  /** Requests being read or answered on it. */
  inFlight: number;
  /** Of those, the ones fully received and not yet answered in full (set while the server works). */
  waitingOnUs: Set<IncomingMessage>;
}

/** Connections whose request body the server has stopped reading for now (it waits for the body budget). */
const pausedByServer = new WeakSet<Socket>();
/** When the server last went back to reading a connection's body, or last saw it held back (performance.now()). */
const readAgainAt = new WeakMap<Socket, number>();

/**
 * Mark `socket`'s body as waiting on the server (body.ts, while its chunk waits for the body budget): its
 * silence is then ours, not the client's. (An outside attack's flood held the budget, the honest body waiting
 * for it went quiet, and the guard closed that connection as the least recently active.)
 */
export function waitingOnServer(socket: Socket | undefined, waiting: boolean): void {
  if (!socket) return;
  if (waiting) pausedByServer.add(socket);
  else if (pausedByServer.delete(socket)) readAgainAt.set(socket, performance.now());
}

/**
 * The server owes this connection an answer it hasn't started to send, or is sending to a reader: an HTTP
 * request fully received and not yet answered, or one whose body it has stopped reading for now; on a byte
 * stream (the gRPC front, which sees no requests), the client spoke last and the server has not answered
 * since — a silent connection never spoke.
 */
const servedNow = (socket: Socket, t: Tracked, answers: 'requests' | 'bytes') =>
  !socket.writableNeedDrain &&
  (answers === 'bytes'
    ? t.lastIn > t.lastOut
    : pausedByServer.has(socket) || [...t.waitingOnUs].some((request) => request.complete));

export interface ConnectionGuard {
  /** Connections closed to make room, and for pipelining past the limit (for tests and logs). */
  readonly evicted: number;
  readonly overPipelined: number;
  /** A byte-stream server's note that it sent `socket` an answer (see `servedNow`). */
  answered(socket: Socket): void;
  /**
   * For a stopping HTTP server: close the connections with no request in flight — kept-alive ones once they
   * have been quiet for 250 ms, ones that never sent a byte once quiet for `graceMs` — and those whose next
   * request's headers have begun but not ended once `graceMs` have passed since `since`. Node's close()
   * leaves a connection that never sent a byte, or sent half a request line, open: one held a stopping server
   * for its whole exit timeout (an outside attack), and Node stops enforcing its header timeout once its
   * server is closed.
   */
  closeWithoutRequests(since: number, graceMs: number): void;
  /**
   * For a stopping HTTP server: close the connections whose request in turn is still arriving and whose
   * client has sent nothing for STALLED_MS while the server was reading (not paused for the body budget or
   * its own backpressure). Half a body and then silence held a stopping server for its whole exit timeout.
   */
  closeStalledArrivals(): void;
  /** HTTP requests being read or answered, on every connection. */
  readonly requestsInFlight: number;
  /** Resolves once no HTTP request is being read or answered, on any connection (at once if none is). */
  requestsDrained(): Promise<void>;
  /** Connections accepted since the guard began (a stopping server closes its listener once this stays put). */
  readonly accepted: number;
}

export function guardConnections(
  server: Server,
  limits: ConnectionLimits = CONNECTION_DEFAULTS,
  /** How to tell a connection awaiting its answer: by HTTP requests, or by who sent bytes last (a proxy's). */
  answers: 'requests' | 'bytes' = 'requests',
): ConnectionGuard {
  // Insertion order is activity order: a socket that moves a byte is moved to the end.
  const byActivity = new Map<Socket, Tracked>();
  const perClient = new Map<string, number>();
  const counts = { evicted: 0, overPipelined: 0, accepted: 0 };
  let drainedWaiters: (() => void)[] = [];
  // Requests in flight on the connections still tracked: a pipelined request queued behind another gets no
  // 'close' of its own when its connection dies, so the count is the connections', not the responses'.
  const requestsInFlight = () => {
    let n = 0;
    for (const t of byActivity.values()) n += t.inFlight;
    return n;
  };
  /** Called wherever the count may have fallen: a response closed, a connection forgotten. */
  const noteDrained = () => {
    if (drainedWaiters.length === 0 || requestsInFlight() > 0) return;
    const waiters = drainedWaiters;
    drainedWaiters = [];
    for (const resolve of waiters) resolve();
  };

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
    noteDrained();
  };
  /**
   * Close the least recently active connection of `address` — by default the address holding the most
   * connections, a flood's rather than a lone client's — passing over those the server is answering unless
   * every one of its connections is. (Taking the least recently active of all, the guard closed a lone
   * honest upload once a flood's connections were all waiting on the server: an outside attack.)
   */
  const makeRoom = (address = busiestAddress()) => {
    let fallback: Socket | undefined;
    for (const [socket, t] of byActivity) {
      if (t.address !== address) continue;
      if (servedNow(socket, t, answers)) {
        fallback ??= socket;
        continue;
      }
      return close(socket);
    }
    if (fallback) close(fallback);
  };
  const busiestAddress = () => {
    let busiest: string | undefined;
    let most = 0;
    for (const [address, count] of perClient)
      if (count > most) {
        most = count;
        busiest = address;
      }
    return busiest;
  };
  const close = (socket: Socket) => {
    counts.evicted++;
    forget(socket);
    socket.destroy();
  };

  server.on('connection', (socket: Socket) => {
    counts.accepted++;
    const address = socket.remoteAddress ?? 'unknown';
    if ((perClient.get(address) ?? 0) >= limits.perClient) makeRoom(address);
    if (byActivity.size >= limits.total) makeRoom();
    const now = performance.now();
    byActivity.set(socket, { address, inFlight: 0, waitingOnUs: new Set(), lastIn: 0, lastOut: 0, lastDone: now });
    perClient.set(address, (perClient.get(address) ?? 0) + 1);
    socket.on('data', () => {
      const t = byActivity.get(socket);
      if (t) t.lastIn = performance.now();
      touch(socket);
    });
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
    t.waitingOnUs.add(request);
    // Sent in full (or given up): from here any wait is the client's reading.
    response.once('finish', () => t.waitingOnUs.delete(request));
    response.once('close', () => {
      t.inFlight--;
      t.lastDone = performance.now();
      t.waitingOnUs.delete(request);
      touch(socket);
      noteDrained();
    });
  });
  return {
    answered(socket: Socket) {
      const t = byActivity.get(socket);
      if (t) t.lastOut = performance.now();
    },
    closeWithoutRequests(since: number, graceMs: number) {
      const now = performance.now();
      for (const [socket, t] of byActivity) {
        if (t.inFlight > 0) continue;
        const begun = t.lastIn > t.lastDone; // bytes of a request whose headers are not whole yet
        if (begun && now - since < graceMs) continue;
        // Quiet for a moment first: a connection just accepted, or just sent a new request, may have bytes
        // not yet read (closed at once, 36 of 40 honest requests sent 50 ms before SIGTERM were reset). One
        // that has not sent a byte yet gets the begun request's grace: a relay (a load balancer) connects as
        // its far client does, and the request follows a long link later (10 of 10 sent 100 ms before
        // SIGTERM through a 400 ms relay were closed unanswered at 250 ms: a re-check).
        const quiet = t.lastIn === 0 ? Math.max(QUIET_BEFORE_CLOSE_MS, graceMs) : QUIET_BEFORE_CLOSE_MS;
        if (!begun && now - Math.max(t.lastDone, t.lastIn, t.lastOut) < quiet) continue;
        forget(socket);
        socket.destroy();
      }
    },
    closeStalledArrivals() {
      const now = performance.now();
      for (const [socket, t] of byActivity) {
        const inTurn = t.waitingOnUs.values().next().value; // the oldest unanswered: the one being read
        if (!inTurn || inTurn.complete) continue;
        if (pausedByServer.has(socket) || socket.isPaused()) {
          readAgainAt.set(socket, now); // held back (the body budget, or backpressure) as of this look
          continue;
        }
        // Its quiet counts from when the server read again, if it had waited: judged from its last byte
        // before the wait, honest uploads over a 200 ms link were cut the moment room came (a re-check).
        if (now - Math.max(t.lastIn, readAgainAt.get(socket) ?? 0) < STALLED_MS) continue;
        forget(socket);
        socket.destroy();
      }
    },
    get requestsInFlight() {
      return requestsInFlight();
    },
    get accepted() {
      return counts.accepted;
    },
    requestsDrained() {
      return requestsInFlight() === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => drainedWaiters.push(resolve));
    },
    get evicted() {
      return counts.evicted;
    },
    get overPipelined() {
      return counts.overPipelined;
    },
  };
}
