/**
 * The body budget's accounting (serve/body-budget.ts), driven directly: bodies that all hold part of it and
 * all wait still finish, one runner per deadlocked address goes over (and one in all), never more.
 */
import { describe, expect, it, vi } from 'vitest';
import { BodyBudget } from '../serve/body-budget.ts';

/** Lets granted takes settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A take's promise, with whether it was granted yet. */
function taking(promise: Promise<void>) {
  const state = { granted: false, failed: false };
  promise.then(
    () => {
      state.granted = true;
    },
    () => {
      state.failed = true;
    },
  );
  return state;
}

describe('the body budget', () => {
  it('bodies of one address that all hold part and all wait: the oldest runs over, then the rest fit', async () => {
    let held = 0;
    const budget = new BodyBudget({ freeBytes: 0, total: 1000, perClient: 100 }, (bytes) => {
      held = bytes;
    });
    const [a, b, c] = [budget.open('x'), budget.open('x'), budget.open('x')];
    await a.take(40);
    await b.take(40);
    const c1 = taking(c.take(30)); // 110 > 100: waits (a and b are reading)
    await settle();
    expect(c1.granted).toBe(false);
    const a2 = taking(a.take(40));
    const b2 = taking(b.take(40));
    await settle();
    // Every holder (a, b) waits now: a, the oldest, is the address's runner and goes past its share.
    expect([a2.granted, b2.granted, c1.granted]).toEqual([true, false, false]);
    expect(held).toBe(120);
    // The runner goes on being let through until it is read; meanwhile the others wait.
    const a3 = taking(a.take(500));
    await settle();
    expect([a3.granted, b2.granted, c1.granted]).toEqual([true, false, false]);
    expect(held).toBe(620);
    // a read: c (first in line) fits, and is reading — nobody is stuck, so no runner: b waits its turn.
    a.close();
    await settle();
    expect([b2.granted, c1.granted]).toEqual([false, true]);
    expect(held).toBe(70);
    c.close();
    await settle();
    expect(b2.granted).toBe(true);
    b.close();
    expect(held).toBe(0);
  });

  it('bodies made to wait in turn get one runner, not one each', async () => {
    let most = 0;
    const budget = new BodyBudget({ freeBytes: 0, total: 10_000, perClient: 100 }, (bytes) => {
      most = Math.max(most, bytes);
    });
    const bodies = Array.from({ length: 10 }, () => budget.open('x'));
    for (const body of bodies) await Promise.race([body.take(8), settle()]);
    // From the newest to the oldest: the body asks for a lot, its neighbour for a little more.
    for (let i = bodies.length - 2; i >= 0; i--) {
      void (bodies[i] as ReturnType<BodyBudget['open']>).take(90).catch(() => {});
      void (bodies[i + 1] as ReturnType<BodyBudget['open']>).take(1).catch(() => {});
      await settle();
    }
    // The share (100) and one runner's body (8 + 90 + 1) at most.
    expect(most).toBeLessThanOrEqual(100 + 99);
    for (const body of bodies) body.close();
  });

  it('every address stuck on the total: one runner of all goes past it; a waiter that hangs up leaves', async () => {
    let held = 0;
    const budget = new BodyBudget({ freeBytes: 0, total: 100, perClient: 100 }, (bytes) => {
      held = bytes;
    });
    const [x, y] = [budget.open('x'), budget.open('y')];
    await x.take(50);
    await y.take(50);
    const x2 = taking(x.take(10));
    const aborted = new AbortController();
    const z = budget.open('z');
    const z1 = taking(z.take(10, aborted.signal));
    const y2 = taking(y.take(10));
    await settle();
    // x and y both wait on the total: x, the oldest waiting body, runs over; y waits.
    expect([x2.granted, y2.granted]).toEqual([true, false]);
    expect(held).toBe(110);
    aborted.abort();
    z.close();
    await settle();
    expect(z1.failed).toBe(true);
    x.close();
    await settle();
    expect(y2.granted).toBe(true);
    y.close();
    expect(held).toBe(0);
  });

  it('while a body waits, a reading one that has sent under the floor for a whole window is evicted; no other is', async () => {
    const limits = { freeBytes: 0, total: 100, perClient: 100, slowWindowMs: 300, minBytesPerSecond: 100 };
    const budget = new BodyBudget(limits);
    const evicted: string[] = [];
    const open = (name: string, address = name) => {
      const account = budget.open(address, () => evicted.push(name));
      return account;
    };
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // Nobody waits: a silent holder keeps its bytes however long.
    const silent = open('silent');
    await silent.take(30);
    silent.arrived(30);
    await sleep(700);
    expect(evicted).toEqual([]);
    // A steady one (≥ 100 B/s), one whose client has sent it all, and then a waiter that does not fit.
    const steady = open('steady');
    await steady.take(30);
    steady.arrived(30);
    const done = open('done');
    await done.take(30);
    done.arrived(30);
    done.complete();
    const waiter = open('waiter');
    const waits = taking(waiter.take(30));
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      steady.arrived(100); // 1,000 B/s: ten times the floor, with room for a slow machine
    }
    expect(evicted).toEqual(['silent']);
    expect(waits.granted).toBe(false);
    silent.close(); // what the evicted body's reader does
    await settle();
    expect(waits.granted).toBe(true);
    for (const account of [steady, done, waiter]) account.close();
  });

  it("room taken at once (a compressed gRPC message) waits only for bodies short of the total, not of their own client's share", async () => {
    const budget = new BodyBudget({ freeBytes: 0, total: 100, perClient: 30 });
    const slow = Array.from({ length: 4 }, () => budget.open('slow'));
    for (const body of slow.slice(0, 3)) await body.take(10); // its client's whole share
    const stuck = taking((slow[3] as ReturnType<BodyBudget['open']>).take(10)); // waits on that share
    await settle();
    expect(stuck.granted).toBe(false);
    // Another client's message takes room the total has (refused before while anyone waited at all).
    const other = budget.open('other');
    expect(other.tryTake(20)).toBe(true);
    // A body short of the total keeps room taken at once from jumping it.
    const big = budget.open('big');
    const waitsForTotal = taking(big.take(30)); // 30 + 20 + 30 used of 100, its 30 fits; then 30 more does not
    await settle();
    expect(waitsForTotal.granted).toBe(true);
    const bigger = taking(budget.open('bigger').take(30));
    await settle();
    expect(bigger.granted).toBe(false);
    expect(budget.open('late').tryTake(5)).toBe(false);
    for (const body of [...slow, other, big]) body.close();
  });

  it("bytes that come back go to the address holding least, not to a flood's next body", async () => {
    const budget = new BodyBudget({ freeBytes: 0, total: 100, perClient: 100 });
    const flood = Array.from({ length: 5 }, () => budget.open('flood'));
    for (const body of flood) await body.take(20);
    const next = taking(flood[0]?.take(20) as Promise<void>); // the flood's next chunk, first in line
    const newcomer = budget.open('newcomer');
    const honest = taking(newcomer.take(20));
    await settle();
    expect([next.granted, honest.granted]).toEqual([false, false]);
    flood[1]?.close();
    await settle();
    expect([next.granted, honest.granted]).toEqual([false, true]);
    for (const body of [...flood, newcomer]) body.close();
  });

  it('judges pace by when bytes arrived: a sender 15% above the floor in chunks of a fifth of the window stays', async () => {
    // On a clock the test moves (a loaded machine's late timers made a steady sender look slow: a flaky run).
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'performance'] });
    try {
      const limits = { freeBytes: 0, total: 100, perClient: 100, slowWindowMs: 1000, minBytesPerSecond: 1000 };
      const budget = new BodyBudget(limits);
      const evicted: string[] = [];
      const steady = budget.open('steady', () => evicted.push('steady'));
      await steady.take(60);
      const waiter = budget.open('waiter');
      const waits = taking(waiter.take(60));
      // 230 B every 200 ms = 1,150 B/s; marks that dated a chunk's bytes to their mark's start judged it 920 B/s.
      for (let i = 0; i < 15; i++) {
        steady.arrived(230);
        await vi.advanceTimersByTimeAsync(200);
      }
      expect(evicted).toEqual([]);
      expect(waits.granted).toBe(false);
      steady.close();
      waiter.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
