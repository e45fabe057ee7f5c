/**
 * How a model version's batch queue is shared between clients (by address). First come, first served let
 * one address fill the queue and keep it full: an outside attack's 8 × 16 connections of 64-image requests
 * had another client's 1,024-image request refused `queue_full` 11 times in 13, and every request of any
 * other client waited behind the whole queue. So room goes max-min fair — a request that does not fit takes
 * it from the client holding most, never from one holding less than the newcomer would — and each run takes
 * requests in turns across clients, the least recently served first.
 */

/** What the shares look at in a waiting request. */
export interface QueuedRequest {
  /** Whose it is: the client's address (over gRPC too: serve/grpc/client-address.ts). */
  client: string;
  /** Its images. */
  count: number;
  /** The request it is a part of, where one was split into runs (a /predict batch): its parts go or stay together. */
  request?: object;
  /** How many runs had begun when it came (a client never served ranks as if served then). */
  arrivedRun?: number;
}

/** Images each client has waiting. */
function heldBy(queue: readonly QueuedRequest[]): Map<string, number> {
  const held = new Map<string, number>();
  for (const p of queue) held.set(p.client, (held.get(p.client) ?? 0) + p.count);
  return held;
}

/**
 * The waiting requests to push out so that `count` more images of `client` fit `max`, or undefined when they
 * may not: room is taken only from a client that holds more than `client` would once admitted, the newest
 * request of the one holding most first, and never a client's oldest waiting request (all of it, where it
 * was split into runs) — so a request of more than half the queue, once in, is not pushed out by the next
 * small one of a client that keeps the rest full (an outside attack: 20 such requests admitted, every one
 * pushed out). A client holding most is refused, as when the queue is simply full.
 */
export function pushedOutFor<T extends QueuedRequest>(
  queue: readonly T[],
  client: string,
  count: number,
  max: number,
): T[] | undefined {
  const held = heldBy(queue);
  const mine = (held.get(client) ?? 0) + count;
  let over = [...held.values()].reduce((sum, n) => sum + n, 0) + count - max;
  // Each client's oldest request (every part of it, where it was split into runs) stays.
  const oldest = new Map<string, object>();
  for (const p of queue) if (!oldest.has(p.client)) oldest.set(p.client, p.request ?? p);
  const pushed = new Set<T>();
  const spent = new Set<string>([client]); // clients with nothing left to push out (and the newcomer)
  while (over > 0) {
    let top: string | undefined;
    let most = mine;
    for (const [other, n] of held) if (!spent.has(other) && n > most) [top, most] = [other, n];
    if (top === undefined) return undefined;
    const newest = queue.findLast((p) => p.client === top && !pushed.has(p));
    if (!newest || oldest.get(top) === (newest.request ?? newest)) {
      spent.add(top);
      continue;
    }
    pushed.add(newest);
    held.set(top, most - newest.count);
    over -= newest.count;
  }
  return [...pushed];
}

/** Clients whose last run is remembered (a few hundred KB at most). */
const REMEMBERED_CLIENTS = 4096;

/** Which run each client was last in: the order `takeTurns` serves clients in. */
export class ServedOrder {
  /** Least recently served first (a client served is re-inserted), so those served longest ago go first. */
  private readonly lastRun = new Map<string, number>();
  private runs = 0;

  /** Runs begun so far (a request's `arrivedRun`). */
  get runsBegun(): number {
    return this.runs;
  }

  /** The run `client` was last in, where remembered. */
  lastServed(client: string): number | undefined {
    return this.lastRun.get(client);
  }

  /**
   * A run begins with requests of `clients`. Past REMEMBERED_CLIENTS, those served longest ago are forgotten:
   * back, they rank as if served when their request came (takeTurns) — later than they were, so never ahead
   * of clients still remembered.
   */
  beginRun(clients: Iterable<string>): void {
    this.runs++;
    for (const client of clients) {
      this.lastRun.delete(client);
      this.lastRun.set(client, this.runs);
    }
    for (const client of this.lastRun.keys()) {
      if (this.lastRun.size <= REMEMBERED_CLIENTS) break;
      this.lastRun.delete(client);
    }
  }
}

/**
 * One run's requests, up to `maxBatch` images (the first always, whatever its size): in rounds, one request
 * from each client with any waiting, least recently served first (`served`: the run each client was last
 * in; one never served, or forgotten, ranks as if served when its oldest waiting request came — first, it let
 * a flood from ever-new addresses go ahead of every known client for good: a 64-image request waited 2.7 s
 * behind one, 52 ms behind the same flood from one address), each client's own in the order they came. A
 * client whose next request does not fit sits out the rest of this run, and being the least recently served,
 * leads the next one.
 */
export function takeTurns<T extends QueuedRequest>(queue: readonly T[], maxBatch: number, served: ServedOrder): T[] {
  const waiting = new Map<string, T[]>();
  for (const p of queue) {
    const own = waiting.get(p.client);
    if (own) own.push(p);
    else waiting.set(p.client, [p]);
  }
  const rank = (client: string) => served.lastServed(client) ?? waiting.get(client)?.[0]?.arrivedRun ?? -1;
  // Stable: clients of one rank keep the order their first waiting request came in.
  const order = [...waiting.keys()].sort((a, b) => rank(a) - rank(b));
  const batch: T[] = [];
  let count = 0;
  for (let took = true; took; ) {
    took = false;
    for (const client of order) {
      const own = waiting.get(client) as T[];
      const next = own[0];
      if (!next) continue;
      if (batch.length > 0 && count + next.count > maxBatch) {
        own.length = 0; // sits out the rest of this run
        continue;
      }
      batch.push(next);
      count += next.count;
      own.shift();
      took = true;
    }
  }
  return batch;
}
