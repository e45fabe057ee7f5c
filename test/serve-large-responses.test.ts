/**
 * Clients that ask for large bodies and never read them: the server's memory stays flat (every body is a
 * view of bytes it already holds), health keeps answering, the stalled sockets are destroyed after the
 * write timeout, a reader that keeps reading is never cut off, and beyond the cap the answer is 503.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createApp } from '../serve/app.ts';
import { createMetrics } from '../serve/metrics.ts';
import { ModelRepository } from '../serve/repository.ts';
import { oddModel } from '../testkit/odd-models.ts';

const STALLED = 20;
const WRITE_TIMEOUT_MS = 1000;
const TRAIN_BYTES = 60_000 * 785;
const MiB = 1024 * 1024;

let server: Server;
let url: string;
let repository: ModelRepository;
/** Server-side sockets by the client's port, to see which ones the server destroyed. */
const serverSockets = new Map<number, Socket>();

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-'));
  mkdirSync(join(root, 'odd', '1'), { recursive: true });
  writeFileSync(join(root, 'odd', '1', 'model.onnx'), oddModel());
  repository = new ModelRepository(root);
  await repository.scan();
  const app = createApp({
    repository,
    metrics: createMetrics(),
    largeResponses: { writeTimeoutMs: WRITE_TIMEOUT_MS, maxConcurrent: STALLED },
  });
  server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server)) as Server;
  });
  server.on('connection', (socket) => serverSockets.set(socket.remotePort as number, socket));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await repository?.close();
});

/** A raw client that sends one GET and then never reads. */
function stalledGet(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
      resolve(socket);
    });
    socket.once('error', reject);
    socket.pause();
  });
}

const live = async () => {
  const start = performance.now();
  const response = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(2000) });
  return { status: response.status, ms: performance.now() - start };
};

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('20 clients that never read /api/mnist/train: RSS flat, health answers, sockets cut after the write timeout, then 503 beyond the cap', async () => {
  // The split is loaded once (it stays cached: it is part of the idle server's memory).
  expect((await fetch(`${url}/api/mnist/train?count=1`)).status).toBe(200);
  const idle = process.memoryUsage().rss;

  const clients = await Promise.all(Array.from({ length: STALLED }, () => stalledGet('/api/mnist/train')));
  await waitFor(() => clients.every((c) => serverSockets.has(c.localPort as number)), 'the server to accept');
  const ports = clients.map((c) => c.localPort as number);
  // Every stalled response is being written: the kernel's buffers are full, the rest waits.
  await waitFor(() => ports.every((p) => (serverSockets.get(p)?.bytesWritten ?? 0) > 0), 'writing to start');

  const health = await live();
  expect(health.status).toBe(200);
  expect(health.ms).toBeLessThan(2000);
  const growth = (process.memoryUsage().rss - idle) / MiB;
  console.log(`RSS +${growth.toFixed(0)} MiB with ${STALLED} stalled clients; health in ${health.ms.toFixed(0)} ms`);
  // 20 copies of the split would be 900 MiB; views cost nothing per client.
  expect(growth).toBeLessThan(200);
  // All slots are taken: one more large body is refused, with a JSON error and Retry-After.
  const refused = await fetch(`${url}/api/mnist/test?count=1`);
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('busy');

  // No byte taken for the write timeout: the server destroys every stalled socket.
  await waitFor(() => ports.every((p) => serverSockets.get(p)?.destroyed), 'stalled sockets to be destroyed', 5000);
  for (const c of clients) c.destroy();
  expect((await fetch(`${url}/api/mnist/test?count=1`)).status).toBe(200);
});

it('a client that reads in bursts, pausing under the write timeout each time, gets the whole body', async () => {
  // The whole split: far more than the kernel's socket buffers hold, so the server must wait on the reader.
  const client = await stalledGet('/api/mnist/train');
  const BURST = 4 * MiB;
  let received = 0;
  let allowed = 0;
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= allowed) client.pause();
  });
  client.pause();
  const start = Date.now();
  let bursts = 0;
  while (received < TRAIN_BYTES && !client.destroyed && Date.now() - start < 30_000) {
    await new Promise((r) => setTimeout(r, WRITE_TIMEOUT_MS * 0.6));
    allowed = received + BURST;
    bursts++;
    client.resume();
    await waitFor(() => client.isPaused() || received >= TRAIN_BYTES || client.destroyed, 'a burst', 5000);
  }
  client.destroy();
  expect(received).toBeGreaterThan(TRAIN_BYTES);
  expect(bursts).toBeGreaterThan(5);
  expect(Date.now() - start).toBeGreaterThan(3 * WRITE_TIMEOUT_MS);
});

it('sends the loaded model file as it is, and mnist and model files both honour weak and listed If-None-Match', async () => {
  const file = await fetch(`${url}/models/odd/1/model.onnx`);
  expect(file.status).toBe(200);
  expect(Buffer.from(await file.arrayBuffer()).equals(Buffer.from(oddModel()))).toBe(true);
  const etag = file.headers.get('etag') as string;
  // Clients that hang up at once, maybe before the handler runs, leave no slot taken.
  for (let i = 0; i <= STALLED; i++) (await stalledGet('/api/mnist/test?count=1')).destroy();
  // A finished download frees its slot: more downloads, one after another, than the cap.
  for (let i = 0; i <= STALLED; i++) {
    const again = await fetch(`${url}/models/odd/1/model.onnx`);
    expect(again.status).toBe(200);
    await again.arrayBuffer();
  }
  for (const [path, tag] of [
    ['/models/odd/1/model.onnx', etag],
    ['/api/mnist/test?count=3', '"mnist-test-3"'],
  ] as const) {
    for (const header of [tag, `W/${tag}`, '*', `"other", ${tag}`, `W/"x,y", W/${tag}`]) {
      const response = await fetch(`${url}${path}`, { headers: { 'If-None-Match': header } });
      expect(response.status, `${path} ${header}`).toBe(304);
      expect(response.headers.get('etag')).toBe(tag);
    }
    for (const header of ['"other"', `${tag.slice(0, -2)}"`, 'W/"other", "x"']) {
      const response = await fetch(`${url}${path}`, { headers: { 'If-None-Match': header } });
      expect(response.status, `${path} ${header}`).toBe(200);
      await response.arrayBuffer();
    }
  }
});

it('serves the docs assets from memory, whole, the same bytes each time', async () => {
  const first = await fetch(`${url}/docs/assets/swagger-ui-bundle.js`);
  expect(first.status).toBe(200);
  const bytes = Buffer.from(await first.arrayBuffer());
  expect(bytes.length).toBe(Number(first.headers.get('content-length')));
  expect(bytes.length).toBeGreaterThan(256 * 1024); // more than one slice
  const again = Buffer.from(await (await fetch(`${url}/docs/assets/swagger-ui-bundle.js`)).arrayBuffer());
  expect(again.equals(bytes)).toBe(true);
});
