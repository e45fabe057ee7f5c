/**
 * gRPC answers a client does not take: a client that pauses its streams shuts their flow-control windows,
 * and the answers wait in the server. They are held to a budget per connection and in all; past the total
 * the connection leaving most unsent is closed, so a client that reads is served. Nor do paused streams hold
 * the budget for requests being decoded (they held every other client's ModelInfer off with
 * RESOURCE_EXHAUSTED).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { addWideModel, callStream, frame, inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';

const IMAGES = 64;
const MiB = 1024 * 1024;
let server: RunningServer;
let request: Buffer;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-wide-'));
  addWideModel(root);
  server = await startServer({
    models: root,
    port: 0,
    grpcPort: 0,
    // Requests being decoded may hold 16 × 300 KB: 24 paused calls of 200 KB would fill that, were they held.
    maxBodyBytes: 300_000,
    grpcUnsentAnswers: { perSession: 3 * MiB, total: 6 * MiB },
  });
  request = inferRequestBytes('wide', IMAGES);
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** A session whose streams each send one call (ModelInfer) and stop reading once the answer begins. */
function pausingSession(port = server.grpcPort, method = 'ModelInfer', message = request) {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 65535 } });
  const outcomes: string[] = [];
  let closed = false;
  session.on('error', () => {});
  session.on('close', () => {
    closed = true;
  });
  const call = () =>
    new Promise<void>((resolve) => {
      const stream = callStream(session, method);
      stream.on('response', (headers) => {
        const status = headers['grpc-status'];
        outcomes.push(status === undefined ? 'answering' : `status ${status}: ${headers['grpc-message']}`);
        if (status === undefined) stream.pause(); // the answer's data waits in the server
        resolve();
      });
      stream.on('error', () => resolve());
      stream.on('close', () => resolve());
      stream.end(frame(message));
    });
  return { session, outcomes, call, closed: () => closed };
}

/** One ModelInfer by a client that reads its answer: its status name. */
async function readingCall(): Promise<string> {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  try {
    // As the refusal asks: the answers of connections closed for room count until they are collected
    // (evicted-answers.ts), so a call arriving meanwhile may be told to retry, for a few hundred ms at most.
    for (let attempt = 0; ; attempt++) {
      const { status, details, answer } = await unaryCall(client, 'ModelInfer', request);
      if (status === 'OK') return `OK ${answer?.length}`;
      if (attempt === 10 || !/retry$/.test(details ?? '')) return `${status}: ${details}`;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    client.close();
  }
}

it('holds the answers of paused streams to a budget per connection, closes the connection leaving most unsent past the total, and serves a client that reads', async () => {
  const first = pausingSession();
  // One at a time: each answer is computed and handed over before the next asks.
  for (let i = 0; i < 6; i++) await first.call();
  // Three answers of 1 MiB fit its 3 MiB; the rest are refused before their model runs.
  expect(first.outcomes.filter((o) => o === 'answering').length).toBeLessThanOrEqual(3);
  expect(first.outcomes.filter((o) => o.startsWith('status 8: ') && o.includes('unsent')).length).toBeGreaterThan(0);
  const second = pausingSession();
  for (let i = 0; i < 3; i++) await second.call();
  // ~6 MiB unsent in all: a client that reads takes room from the connection leaving most unsent.
  const answer = await readingCall();
  expect(answer).toMatch(/^OK \d+$/);
  expect(Number(answer.slice(3))).toBeGreaterThan(MiB);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(first.closed() || second.closed()).toBe(true);
  first.session.destroy();
  second.session.destroy();
}, 60_000);

it('paused streams do not hold the budget for requests being decoded: a client that reads is still served', async () => {
  const sessions = Array.from({ length: 12 }, () => pausingSession());
  // 24 paused calls of 200 KB requests, two per connection (within each one's share of answers).
  for (const s of sessions) for (let i = 0; i < 2; i++) await s.call();
  const answer = await readingCall();
  expect(answer).toMatch(/^OK \d+$/);
  for (const s of sessions) s.session.destroy();
}, 60_000);

it("holds other methods' large answers to the same budget: the index of a repository of 3,000 models", async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-index-'));
  for (let i = 0; i < 3000; i++) {
    mkdirSync(join(root, `model-${i}`, '1'), { recursive: true });
    writeFileSync(join(root, `model-${i}`, '1', 'model.onnx'), 'not loaded: explicit mode');
  }
  // Nothing loads in explicit mode: each entry says why ('unloaded …'), ~60 bytes, ~200 KB an answer.
  const many = await startServer({
    models: root,
    port: 0,
    grpcPort: 0,
    modelControlMode: 'explicit',
    grpcUnsentAnswers: { perSession: 300_000, total: 600_000 },
  });
  try {
    const client = pausingSession(many.grpcPort, 'RepositoryIndex', Buffer.alloc(0));
    for (let i = 0; i < 3; i++) await client.call();
    // An outside attack's never-read index answers took +0.6 GB: now the second is refused before it is built.
    expect(client.outcomes[0]).toBe('answering');
    expect(client.outcomes.slice(1)).toEqual([
      expect.stringMatching(/^status 8: .*unsent/),
      expect.stringMatching(/^status 8: .*unsent/),
    ]);
    client.session.destroy();
  } finally {
    await many.close();
  }
}, 60_000);
