/**
 * Answers dropped by closing a client's connections are garbage until a collection runs: an outside attack
 * evicted 28 gRPC sessions of never-read answers one after another and left +0.5 GB of unreachable buffers
 * behind a 64 MiB budget. Evicted bytes now count until a collection has run after their connections
 * closed; a budget evicts only while they hold less than its total. Real HTTP/2 sessions and TCP sockets,
 * V8's real collection (counted).
 */
import http2, { type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EvictedAnswers, garbageCollection } from '../serve/evicted-answers.ts';
import { UnsentAnswers } from '../serve/grpc/unsent-answers.ts';
import { STALLED_MS, UnreadAnswers } from '../serve/unread-answers.ts';
import { corkedSockets } from './helpers/corked-sockets.ts';
import { until } from './helpers/until.ts';

const MiB = 1024 * 1024;

/** An EvictedAnswers that counts the collections it asks for (V8's own, run at once when asked). */
function countingEvicted() {
  let collections = 0;
  const evicted = new EvictedAnswers(() => {
    garbageCollection()?.();
    collections++;
  }, 0);
  return { evicted, collections: () => collections };
}

it('a full collection is available to the server (the flag set at run time)', () => {
  expect(typeof garbageCollection()).toBe('function');
});

it('evicted bytes count until their connections have closed and a collection has run after', async () => {
  const { evicted, collections } = countingEvicted();
  let close: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    close = resolve;
  });
  evicted.hold(3 * MiB, closed);
  evicted.hold(2 * MiB, closed);
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(evicted.bytes).toBe(5 * MiB); // not closed yet: no collection would free them
  expect(collections()).toBe(0);
  close();
  await until(() => collections() > 0);
  expect(evicted.bytes).toBe(0);
  expect(collections()).toBe(1); // one collection for both
});

let h2: http2.Http2Server;
const serverSessions: Http2Session[] = [];
const clients: http2.ClientHttp2Session[] = [];
beforeAll(async () => {
  h2 = http2.createServer();
  h2.on('session', (s) => serverSessions.push(s));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await new Promise((resolve) => h2.close(resolve));
});

/** A connected HTTP/2 session as the server sees it. */
async function session(): Promise<Http2Session> {
  const before = serverSessions.length;
  const client = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
  client.on('error', () => {});
  clients.push(client);
  while (serverSessions.length === before) await new Promise((resolve) => setTimeout(resolve, 5));
  return serverSessions[serverSessions.length - 1] as Http2Session;
}

it('gRPC: evictions stop once the answers evicted before fill the total, and resume after a collection', async () => {
  const { evicted } = countingEvicted();
  const answers = new UnsentAnswers({ perSession: 3 * MiB, total: 6 * MiB }, evicted);
  const sessions: Http2Session[] = [];
  for (let i = 0; i < 6; i++) sessions.push(await session());
  const unsent = (i: number, bytes: number) => {
    const answer = answers.open(sessions[i]);
    const refusal = answer.hold(bytes);
    if (!refusal) answer.handedOver();
    return refusal;
  };
  const destroyed = () => sessions.map((s) => s.destroyed);
  // In one turn of the loop, so that no eviction's connection has closed (and been collected) in between.
  expect(unsent(0, 3 * MiB)).toBeUndefined();
  expect(unsent(1, 3 * MiB)).toBeUndefined();
  // Over the total: the session leaving most unsent is closed for room, twice (3 MiB, then 6 MiB evicted).
  expect(unsent(2, MiB)).toBeUndefined();
  expect(unsent(3, 3 * MiB)).toBeUndefined();
  expect(destroyed()).toEqual([true, true, false, false, false, false]);
  expect(evicted.bytes).toBe(6 * MiB);
  // 6 MiB evicted and not yet collected: no third eviction, the call waits (before, a chain of evictions
  // let memory grow by every evicted session's answers).
  expect(unsent(4, 3 * MiB)).toMatch(/would be unsent to clients .*retry/);
  expect(destroyed()).toEqual([true, true, false, false, false, false]);
  await until(() => evicted.bytes === 0);
  expect(unsent(5, 3 * MiB)).toBeUndefined();
  expect(destroyed()).toEqual([true, true, false, true, false, false]);
});

it('HTTP: the same, for addresses whose connections hold unread bytes', async () => {
  const { holding, close } = await corkedSockets();
  try {
    const { evicted } = countingEvicted();
    let clock = 0;
    const unread = new UnreadAnswers({ perClient: 64 * MiB, total: 4 * MiB }, evicted, () => clock);
    const [flood, second, idle, idle2] = [
      await holding(5 * MiB),
      await holding(5 * MiB),
      await holding(0),
      await holding(0),
    ];
    // In one turn of the loop, as above; the floods' connections take no bytes (stalled, after STALLED_MS).
    unread.track(flood, '10.0.0.1');
    clock += STALLED_MS;
    unread.track(idle, '10.0.0.2');
    expect(unread.refusal('10.0.0.2')).toBeUndefined(); // room made: the flood's connection closed
    expect(flood.destroyed).toBe(true);
    unread.track(second, '10.0.0.3');
    unread.track(idle2, '10.0.0.4');
    clock += STALLED_MS;
    // 5 MiB evicted, over the 4 MiB total: not another eviction until a collection has run.
    expect(unread.refusal('10.0.0.4')).toMatch(/still unread by clients/);
    expect(second.destroyed).toBe(false);
    await until(() => evicted.bytes === 0);
    expect(unread.refusal('10.0.0.4')).toBeUndefined();
    expect(second.destroyed).toBe(true);
  } finally {
    await close();
  }
});
