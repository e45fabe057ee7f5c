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
 * New connections get their share of the loop too. With an immediate pending, Node's poll takes one new
 * connection from the kernel's queue per iteration (100 ms of work per iteration: 19 of 300 queued
 * connections accepted in 2 s), so with a heavy turn in every iteration a flood's queue drained at a few
 * connections a second and a new client (a health probe) waited 9–20 s just to be accepted. An iteration
 * that accepted a connection now gives no turn, for as long as the last turn took (at least
 * `MIN_ACCEPT_MS`): connections and heavy work each get about half the loop when both are pressed.
 * (Passing over a fixed 64 iterations instead let an outside attack's connection churn, with iterations
 * made long by small bodies, hold heavy work to one turn in 65: 17.6 → 1.8 large bodies a second.)
 */

/** However cheap the last turn, accepting may go on this long before the next. */
const MIN_ACCEPT_MS = 1;

interface Waiting {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
}

const queues = new Map<string, Waiting[]>();
let scheduled = false;
/** A connection was accepted since the last callback. */
let accepted = false;
/** When the last turn was given, and what it cost (to the next callback); when accepting began to pass turns over. */
let turnGivenAt: number | undefined;
let lastTurnMs = 0;
let acceptingSince: number | undefined;

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
  // One waiter per turn: its continuation runs in this callback's microtasks, and the next waiter's turn is
  // scheduled from here, so it lands in the next iteration, after that iteration's poll for I/O.
  setImmediate(() => {
    const now = performance.now();
    if (turnGivenAt !== undefined) lastTurnMs = now - turnGivenAt;
    turnGivenAt = undefined;
    if (accepted) {
      // This iteration's poll accepted a connection: the next may accept another, while it is their time.
      accepted = false;
      acceptingSince ??= now;
      if (now - acceptingSince < Math.max(MIN_ACCEPT_MS, lastTurnMs)) return next();
    }
    acceptingSince = undefined;
    const waiter = takeNext();
    if (waiter) {
      turnGivenAt = performance.now();
      waiter.resolve();
    }
    if (queues.size > 0) return next();
    scheduled = false;
    turnGivenAt = undefined; // measured only by a callback that follows at once, not after idle time
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
