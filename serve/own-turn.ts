/**
 * Heavy synchronous work (a request body's JSON parsed and checked: 10–40 ms for a MiB) waits for a turn of
 * the event loop of its own, one at a time: between two of them the loop reads sockets and answers light
 * requests. Without it, every body finished in one poll ran its parse back to back — 64 connections
 * posting 700 KB JSON bodies held a health check for 10.9 s (each body's own cost is unchanged; the loop
 * just never goes more than one of them without looking up).
 */

const waiting: (() => void)[] = [];
let scheduled = false;

/** Resolves at the start of a loop turn that runs nothing else heavy; do the work synchronously after it. */
export function ownTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) next();
  });
}

function next(): void {
  scheduled = true;
  // One waiter per check phase: its continuation runs in this callback's microtasks, and the next waiter's
  // immediate is queued from here, so it lands in the next turn, after that turn's poll for I/O.
  setImmediate(() => {
    waiting.shift()?.();
    if (waiting.length > 0) next();
    else scheduled = false;
  });
}
