/**
 * Answers a client never reads hold the server's memory: an outside attack held +1.2 GiB from one address
 * with 200 connections, each sending one request for a few MB of JSON and never reading it. Past its
 * budget of unsent answer bytes a client's inference requests are refused (503 unread_answers); other
 * addresses are served; once the unread answers are gone, so is the refusal; over the total, the address
 * leaving most unread is cut off rather than everyone refused.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { STALLED_MS, UnreadAnswers } from '../serve/unread-answers.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { type CorkedSockets, corkedSockets } from './helpers/corked-sockets.ts';
import { refusalOf } from './helpers/refusal.ts';

const WIDE = 4086; // values per image besides the logits (4,096 in all, the most an answer may have): 64 images answer ~5 MB of JSON
const IMAGES = 64;
const PER_CLIENT = 1024 * 1024;
let server: RunningServer;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-wide-'));
  mkdirSync(join(root, 'wide', '1'), { recursive: true });
  writeFileSync(join(root, 'wide', '1', 'model.onnx'), oddModel({ wideOutput: WIDE }));
  server = await startServer({ models: root, port: 0, unreadAnswers: { perClient: PER_CLIENT, total: 64 << 20 } });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** The 503 a client gets once its unread answers pass its budget (polled while they are written), or undefined. */
async function refusedWithin(ms: number): Promise<{ status: number; body: unknown } | undefined> {
  for (const until = performance.now() + ms; performance.now() < until; ) {
    const answer = await infer();
    if (answer.status === 503) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

const body = JSON.stringify({
  inputs: [{ name: 'input', shape: [IMAGES, 1, 28, 28], datatype: 'FP32', data: new Array(IMAGES * 784).fill(0.5) }],
});
const PATH = '/v2/models/wide/infer';

/** One inference request from `localAddress`, its whole answer read. */
function infer(localAddress = '127.0.0.1'): Promise<{ status: number; body: unknown }> {
  return fetchFrom(localAddress, PATH, body);
}

/** A POST of `body` to `path` from `localAddress`, its whole answer read. */
function fetchFrom(localAddress: string, path: string, body: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: '127.0.0.1', port: server.port, path, method: 'POST', localAddress, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      },
    );
    r.on('error', reject);
    r.setHeader('content-type', 'application/json');
    r.end(body);
  });
}

/**
 * Connections that each send one request and never read the answer, with a 4 KiB receive buffer (Node's
 * sockets can't set one), as the attack's did: the kernel still takes a few MB of each answer, the rest waits
 * in the server. Debian's
 * Python holds them open until it is killed.
 */
function neverReading(count: number, pipelined = 1): Promise<ChildProcess> {
  const script = `
import socket, sys, time
body = sys.stdin.buffer.read()
head = ('POST ${PATH} HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body)).encode()
socks = []
for i in range(${count}):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', int(sys.argv[1])))
    s.sendall((head + body) * ${pipelined})
    socks.append(s)
print('sent', flush=True)
time.sleep(120)
`;
  const child = spawn('/usr/bin/python3', ['-c', script, String(server.port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(body);
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve(child));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the never-reading client exited (${code})`)));
  });
}

it('refuses a client whose answers sit unread past its budget, serves other addresses, and serves it again once they are gone', async () => {
  expect((await infer()).status).toBe(200);
  const clients = await neverReading(8);
  try {
    // Until those answers are written, the client is within its budget; then it is refused.
    const refused = await refusedWithin(10_000);
    expect(refused?.status).toBe(503);
    const { code, message } = refusalOf(refused?.body, PATH);
    expect(code).toBe('unread_answers');
    const held = Number(/^([\d.]+) MiB of answers to this client are still unread/.exec(message)?.[1]);
    expect(held * 2 ** 20).toBeGreaterThan(PER_CLIENT);
    // Another address has its own budget.
    const fresh = await infer('127.0.0.2');
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    // The repository index is held to the same budget (its answer grows with the repository: megabytes for
    // thousands of models), and is refused before it is built.
    const index = (localAddress: string) =>
      fetchFrom(localAddress, '/v2/repository/index', JSON.stringify({ ready: false }));
    const indexRefused = await index('127.0.0.1');
    expect(indexRefused.status).toBe(503);
    expect(refusalOf(indexRefused.body, '/v2/repository/index').code).toBe('unread_answers');
    expect((await index('127.0.0.2')).status).toBe(200);
  } finally {
    clients.kill('SIGKILL');
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect((await infer()).status).toBe(200);
}, 60_000);

it('runs nothing pipelined behind an unread answer (an outside attack held +1.2 GiB with 16 pipelined per connection, their bodies and answers waiting)', async () => {
  const wide = await startServer({
    models: server.repository.root,
    port: 0,
    unreadAnswers: { perClient: 12 * 1024 * 1024, total: 64 << 20 },
  });
  const previous = server;
  server = wide;
  const executions = async () =>
    ((await (await fetch(`${wide.url}/v2/models/wide/stats`)).json()) as { model_stats: { execution_count: number }[] })
      .model_stats[0]?.execution_count ?? 0;
  const before = await executions();
  const clients = await neverReading(1, 16);
  try {
    // The first answer (~5 MB) is computed and sits unread; the 15 behind it wait their turn.
    for (const until = performance.now() + 10_000; performance.now() < until; ) {
      if ((await executions()) - before >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await executions()) - before).toBe(1);
    // One unread answer and one more (~10 MB) are within the client's 12 MiB: it is served on a connection it reads.
    const fresh = await infer();
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
  } finally {
    clients.kill('SIGKILL');
    server = previous;
    await wide.close();
  }
}, 60_000);

describe('over the total', () => {
  // Real sockets, corked so that what is written stays in their buffers (what a client that never reads leaves).
  let corked: CorkedSockets;
  beforeAll(async () => {
    corked = await corkedSockets();
  });
  afterAll(async () => {
    await corked.close();
  });
  const holding = (bytes: number) => corked.holding(bytes);
  const MiB = 1024 * 1024;

  it('a client within its share takes room from the address leaving most unread, not from one waiting for its answer', async () => {
    let clock = 0;
    const unread = new UnreadAnswers({ perClient: 64 * MiB, total: 4 * MiB }, undefined, () => clock);
    const flood = await holding(5 * MiB);
    unread.track(flood, '10.0.0.1');
    // The flood itself is refused (nobody else to take room from).
    expect(unread.refusal('10.0.0.1')).toMatch(/of answers are still unread by clients/);
    // Its connection takes no bytes: after STALLED_MS it has stopped reading, and may be cut for room.
    unread.track(await holding(0), '10.0.0.2');
    expect(unread.refusal('10.0.0.2')).toMatch(/still unread by clients/);
    expect(flood.destroyed).toBe(false);
    clock += STALLED_MS;
    // A fresh address is served: the flood's connections are closed (before: 503, as everyone was).
    expect(unread.refusal('10.0.0.2')).toBeUndefined();
    expect(flood.destroyed).toBe(true);
    // An answer being computed (reserved) is not an unread one: its client is not evicted for it (two
    // clients evicted each other in turn while each waited for its answer).
    const waiting = await holding(0);
    unread.track(waiting, '10.0.0.3');
    expect('release' in unread.reserve('10.0.0.3', 3 * MiB)).toBe(true);
    unread.track(await holding(0), '10.0.0.4');
    expect(unread.refusal('10.0.0.4', 2 * MiB)).toMatch(/still unread by clients/);
    expect(waiting.destroyed).toBe(false);
  });

  it('a client taking its answer is not cut for room however much it holds; one that stopped taking bytes is, though it holds less', async () => {
    // A peer that reads 160 KiB every 10 ms: its connection makes progress, steadily.
    const slow = createServer((s) => {
      s.pause();
      const timer = setInterval(() => s.read(160 * 1024), 10);
      s.on('close', () => clearInterval(timer)).on('error', () => {});
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const reader = connect((slow.address() as AddressInfo).port, '127.0.0.1');
    try {
      await new Promise((resolve) => reader.once('connect', resolve));
      reader.write(Buffer.alloc(64 * MiB)); // far more than the kernel takes at once
      let clock = 0;
      const unread = new UnreadAnswers({ perClient: 64 * MiB, total: 4 * MiB }, undefined, () => clock);
      const stopped = await holding(3 * MiB);
      unread.track(reader, '10.0.1.1');
      unread.track(stopped, '10.0.1.2');
      expect(reader.writableLength).toBeGreaterThan(stopped.writableLength);
      clock += STALLED_MS;
      await new Promise((resolve) => setTimeout(resolve, 300)); // the reader takes some bytes meanwhile
      unread.track(await holding(0), '10.0.1.3');
      unread.refusal('10.0.1.3');
      // Before, the address holding most was cut: the reader, mid-answer (an outside attack's honest readers
      // were reset beside never-reading addresses, which kept their connections).
      expect(stopped.destroyed).toBe(true);
      expect(reader.destroyed).toBe(false);
    } finally {
      reader.destroy();
      await new Promise((resolve) => slow.close(resolve));
    }
  });
});
