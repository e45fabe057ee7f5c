/**
 * The batcher's queue (serve/batcher.ts): requests whose client left are dropped unrun, the queue holds at
 * most `maxQueued` images, and a stopping server fails what waits while the run in flight finishes. Runs are
 * a function the test releases one at a time, so what ran, and in which batch, is known exactly.
 */
import { describe, expect, it } from 'vitest';
import { Batcher, DroppedRequestError, type Outputs, QueueFullError } from '../serve/batcher.ts';

const IMAGE = 4;

/** A batcher whose runs wait for `release()`; `runs` records each run's first values (one per image). */
function gatedBatcher(maxQueued?: number) {
  const runs: number[][] = [];
  const gates: (() => void)[] = [];
  const run = (images: Float32Array, count: number): Promise<Outputs> => {
    runs.push(Array.from({ length: count }, (_, i) => images[i * IMAGE] as number));
    return new Promise((resolve) => gates.push(() => resolve({ out: images.filter((_, i) => i % IMAGE === 0) })));
  };
  const batcher = new Batcher(run, { maxBatch: 2, delayMs: 0, rowSizes: { out: 1 }, imageSize: IMAGE, maxQueued });
  const release = async () => {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { batcher, runs, release };
}

const images = (...firsts: number[]) => Float32Array.from(firsts.flatMap((f) => [f, 0, 0, 0]));

describe('the batcher queue', () => {
  it("drops a waiting request when its client's signal aborts: it never runs", async () => {
    const { batcher, runs, release } = gatedBatcher();
    const first = batcher.inferTimed(images(1), 1); // runs at once
    const gone = new AbortController();
    const abandoned = batcher.inferTimed(images(2), 1, gone.signal);
    const kept = batcher.inferTimed(images(3), 1, new AbortController().signal);
    gone.abort();
    await expect(abandoned).rejects.toThrow(DroppedRequestError);
    expect(batcher.queuedImages).toBe(1);
    await release();
    expect((await first).outputs.out).toEqual(Float32Array.of(1));
    await release();
    expect((await kept).outputs.out).toEqual(Float32Array.of(3));
    expect(runs).toEqual([[1], [3]]); // 2 never ran
  });

  it('runs a request whose client leaves once its run has started (its rows are part of the batch)', async () => {
    const { batcher, runs, release } = gatedBatcher();
    const gone = new AbortController();
    const running = batcher.inferTimed(images(5), 1, gone.signal);
    gone.abort();
    await release();
    expect((await running).outputs.out).toEqual(Float32Array.of(5));
    expect(runs).toEqual([[5]]);
  });

  it('refuses a request whose client has already gone', async () => {
    const { batcher, runs } = gatedBatcher();
    const gone = new AbortController();
    gone.abort();
    await expect(batcher.inferTimed(images(1), 1, gone.signal)).rejects.toThrow(/went away/);
    expect(runs).toEqual([]);
  });

  it('holds at most maxQueued waiting images; the run in flight is not counted', async () => {
    const { batcher, release } = gatedBatcher(3);
    const inFlight = batcher.inferTimed(images(1, 2), 2);
    const waiting = [batcher.inferTimed(images(3, 4), 2), batcher.inferTimed(images(5), 1)];
    expect(batcher.queuedImages).toBe(3);
    await expect(batcher.inferTimed(images(6), 1)).rejects.toThrow(QueueFullError);
    await release(); // the first run ends; [3, 4] starts: one image of room again
    const later = batcher.inferTimed(images(7), 1);
    await release();
    await release();
    await Promise.all([inFlight, ...waiting, later]);
    expect((await later).outputs.out).toEqual(Float32Array.of(7));
  });

  it('close() fails the waiting requests and refuses new ones; the run in flight finishes', async () => {
    const { batcher, runs, release } = gatedBatcher();
    const inFlight = batcher.inferTimed(images(1), 1);
    const waiting = batcher.inferTimed(images(2), 1);
    batcher.close();
    await expect(waiting).rejects.toMatchObject({ reason: 'shutting_down' });
    await expect(batcher.inferTimed(images(3), 1)).rejects.toMatchObject({ reason: 'shutting_down' });
    await release();
    expect((await inFlight).outputs.out).toEqual(Float32Array.of(1));
    expect(runs).toEqual([[1]]);
  });

  it('one client that fills the queue gives up its newest requests to another that holds less', async () => {
    const { batcher, runs, release } = gatedBatcher(4);
    const inFlight = batcher.inferTimed(images(1, 2), 2, undefined, 'a');
    const a = [3, 4, 5, 6].map((f) => batcher.inferTimed(images(f), 1, undefined, 'a'));
    expect(batcher.queuedImages).toBe(4);
    const b = batcher.inferTimed(images(7), 1, undefined, 'b'); // 'a' holds 4, 'b' would hold 1: 6 makes room
    await expect(a[3]).rejects.toThrow(QueueFullError);
    expect(batcher.queuedImages).toBe(4);
    // 'a' is refused more: the only other holds less than 'a' would. So is 'b' past what 'a' holds.
    await expect(batcher.inferTimed(images(8), 1, undefined, 'a')).rejects.toThrow(
      /no room can be taken from a client holding more than this one would/,
    );
    const b2 = batcher.inferTimed(images(9), 1, undefined, 'b'); // 'a' 3, 'b' would hold 2: 5 goes
    await expect(a[2]).rejects.toThrow(QueueFullError);
    await expect(batcher.inferTimed(images(10, 11), 2, undefined, 'b')).rejects.toThrow(QueueFullError); // 'a' 2, 'b' 4
    for (let i = 0; i < 3; i++) await release();
    await Promise.all([inFlight, a[0], a[1], b, b2]);
    // Turns: one of each client a run ('b', come while run 1 was under way, ranks with 'a', served in it).
    expect(runs).toEqual([
      [1, 2],
      [3, 7],
      [4, 9],
    ]);
  });

  it("never pushes out a client's oldest waiting request: a request of the whole queue, once in, stays", async () => {
    const { batcher, runs, release } = gatedBatcher(2);
    const inFlight = batcher.inferTimed(images(1, 2), 2, undefined, 'a');
    const big = batcher.inferTimed(images(3, 4), 2, undefined, 'b'); // fits the empty queue: the whole of it
    // 'a' holds nothing waiting and would hold less than 'b': before, 'b's only request went, every time.
    await expect(batcher.inferTimed(images(5), 1, undefined, 'a')).rejects.toThrow(QueueFullError);
    await release();
    await release();
    await Promise.all([inFlight, big]);
    expect(runs).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it("keeps every part of a split request that is its client's oldest: none is pushed out", async () => {
    const { batcher, runs, release } = gatedBatcher(4);
    const inFlight = batcher.inferTimed(images(1, 2), 2, undefined, 'a');
    const parts = [images(3, 4), images(5, 6)].map((p) => ({ images: p, count: 2 }));
    const split = batcher.inferAll(parts, undefined, 'b'); // the whole queue, in two parts
    // Before: 'a' pushed out the second part, and the whole request failed (its first part's run wasted).
    await expect(batcher.inferTimed(images(7), 1, undefined, 'a')).rejects.toThrow(QueueFullError);
    for (let i = 0; i < 3; i++) await release();
    await Promise.all([inFlight, split]);
    expect(runs).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
  });

  it('takes room from the next client holding more when the one holding most has only its oldest request', async () => {
    const { batcher, runs, release } = gatedBatcher(6);
    const inFlight = batcher.inferTimed(images(1, 2), 2, undefined, 'x');
    const big = batcher.inferAll(
      [
        { images: images(3, 4), count: 2 },
        { images: images(5, 6), count: 2 },
      ],
      undefined,
      'a',
    );
    const b = [batcher.inferTimed(images(7), 1, undefined, 'b'), batcher.inferTimed(images(8), 1, undefined, 'b')];
    // 'a' holds most (4, all of it its oldest request); 'b' holds 2, more than 'c' would (1): 'b' gives up 8.
    const c = batcher.inferTimed(images(9), 1, undefined, 'c');
    await expect(b[1]).rejects.toThrow(QueueFullError);
    for (let i = 0; i < 4; i++) await release();
    await Promise.all([inFlight, big, b[0], c]);
    expect(runs.flat().sort((p, q) => p - q)).toEqual([1, 2, 3, 4, 5, 6, 7, 9]);
  });

  it("takes each run's requests in turns across clients, each client's in the order they came", async () => {
    const { batcher, runs, release } = gatedBatcher();
    const first = batcher.inferTimed(images(1), 1, undefined, 'a'); // runs at once
    const waiting = [
      batcher.inferTimed(images(2), 1, undefined, 'a'),
      batcher.inferTimed(images(3), 1, undefined, 'a'),
      batcher.inferTimed(images(4), 1, undefined, 'a'),
      batcher.inferTimed(images(5), 1, undefined, 'b'),
      batcher.inferTimed(images(6), 1, undefined, 'c'),
      batcher.inferTimed(images(7), 1, undefined, 'b'),
    ];
    for (let i = 0; i < 4; i++) await release();
    await Promise.all([first, ...waiting]);
    // 'b' and 'c', come while run 1 (which served 'a') was under way, rank with 'a': one request of each
    // client a round, the clients in the order their first waiting request came.
    expect(runs).toEqual([[1], [2, 5], [6, 3], [7, 4]]);
  });

  it('ranks a client never served as if served when its request came: ever-new clients do not go ahead for good', async () => {
    const { batcher, runs, release } = gatedBatcher();
    const first = batcher.inferTimed(images(1, 2), 2, undefined, 'v'); // run 1: 'v' served
    const mine = batcher.inferTimed(images(3, 4), 2, undefined, 'v'); // the whole of a run, waiting
    const fresh = [5, 6, 7].map((f) => batcher.inferTimed(images(f), 1, undefined, `new-${f}`));
    await release(); // run 2: 'v' was served in run 1, each new client "when it came", in run 1 too: 'v' came first
    const more = [8, 9].map((f) => batcher.inferTimed(images(f), 1, undefined, `new-${f}`)); // came during run 2
    for (let i = 0; i < 4; i++) await release();
    await Promise.all([first, mine, ...fresh, ...more]);
    // Before: every new client went first, run after run, and 'v's two images waited for all of them.
    expect(runs.slice(0, 2)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('answers the requests of one large run over several event-loop turns, not all in one', async () => {
    const run = async (images: Float32Array): Promise<Outputs> => ({ out: images.filter((_, i) => i % IMAGE === 0) });
    const batcher = new Batcher(run, { maxBatch: 256, delayMs: 5, rowSizes: { out: 1 }, imageSize: IMAGE });
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const turns = await Promise.all(
      Array.from({ length: 200 }, (_, i) => batcher.inferTimed(images(i), 1).then((r) => [r.outputs.out?.[0], turn])),
    );
    ticking = false;
    expect(turns.map(([value]) => value)).toEqual(Array.from({ length: 200 }, (_, i) => i)); // each its own row
    const seen = turns.map(([, t]) => t as number);
    // 64 a turn: four slices. Before: all 200 in the turn the run ended.
    expect(new Set(seen).size).toBe(4);
  });
});
