/**
 * Heavy synchronous work (a request body's JSON parsed and checked: 10–80 ms for a MiB) waits for a turn of
 * the event loop of its own, one at a time: between two of them the loop reads sockets and answers light
 * requests. Without it, every body finished in one poll ran its parse back to back — 64 connections
 * posting 700 KB JSON bodies held a health check for 10.9 s (each body's own cost is unchanged; the loop
 * just never goes more than one of them without looking up).
 *
 * Turns go round the client addresses waiting (one each in turn, first come first served within one), so a
 * flood from one address delays another's body by about one parse per flooding address, not by the whole
 * queue; and work whose client has gone is dropped when its turn comes (an outside attack queued 300 bodies
 * of 1 KB gzip, 1 MB decoded, and hung up: 27 s of parsing for nobody, a 100 KB body from another address
 * waited 104 s).
 *
 * A turn also waits while connections are being accepted: Node takes one new connection from the kernel's
 * queue per loop iteration, so with a heavy turn in every iteration a flood's queue drained at a few
 * connections a second and a new client (a health probe) waited 9–20 s just to be accepted. Iterations
 * that accepted a connection now give no turn (up to `ACCEPTS_PER_TURN` in a row), and cost microseconds.
 */

/** Iterations that accept a connection run before a turn, at most: new clients get in at ~64 per parse. */
export const ACCEPTS_PER_TURN = 64;

interface Waiting {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
}

const queues = new Map<string, Waiting[]>();
let scheduled = false;
/** A connection was accepted since the last check phase; turns in a row passed over for that. */
let accepted = false;
let passedOver = 0;

/** A server's 'connection' listener: the loop just accepted one, and there may be more queued. */
export function noteConnection(): void {
  accepted = true;
}

/**
 * Resolves at the start of a loop turn that runs nothing else heavy; do the work synchronously after it.
 * Rejects instead when `signal` has aborted by then.
 */
export function ownTurn(client = '', signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const queue = queues.get(client) ?? [];
    queue.push({ resolve, reject, signal });
    queues.set(client, queue);
    if (!scheduled) next();
  });
}

function next(): void {
  scheduled = true;
  // One waiter per check phase: its continuation runs in this callback's microtasks, and the next waiter's
  // immediate is queued from here, so it lands in the next turn, after that turn's poll for I/O.
  setImmediate(() => {
    // This iteration's poll accepted a connection: the next one may accept another before any heavy work.
    if (accepted && passedOver < ACCEPTS_PER_TURN) {
      accepted = false;
      passedOver++;
      return next();
    }
    accepted = false;
    passedOver = 0;
    const waiter = takeNext();
    if (waiter) waiter.resolve();
    if (queues.size > 0) next();
    else scheduled = false;
  });
}

/** The next live waiter, round the clients (a Map keeps insertion order: a client served goes to the back). */
function takeNext(): Waiting | undefined {
  for (const [client, queue] of queues) {
    queues.delete(client);
    let waiter = queue.shift();
    while (waiter?.signal?.aborted) {
      waiter.reject(waiter.signal.reason ?? new Error('aborted'));
      waiter = queue.shift();
    }
    if (queue.length > 0) queues.set(client, queue);
    if (waiter) return waiter;
  }
  return undefined;
}
