/**
 * Work for a slow model is bounded and dropped when nobody waits for it: clients that hang up (one request
 * each, or pipelined on one connection) leave the queue unrun and are counted as 499; a full queue answers
 * 503 queue_full; a stopping server answers what waits 503 instead of running it. An outside attack before
 * these: 32 connections × 16 queued requests held 1.1 GiB and kept a slow model busy for 16 minutes after the
 * clients had gone, pipelined requests of a closed connection were logged 200, and SIGTERM waited > 90 s.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcProtoRoot } from '../serve/grpc/proto.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { hostileModel } from '../testkit/hostile-models.ts';
import {
  callStream,
  frame as frameOf,
  grpcStream,
  inferRequestBytes,
  rawCall,
  unaryCall,
} from './helpers/grpc-requests.ts';
import { spyOnGunzip } from './helpers/gunzip-spy.ts';
import { refusalFrom, refusalOf } from './helpers/refusal.ts';
import { until } from './helpers/until.ts';

/**
 * The slow model's matrix side: every run a SLOW_SIZE² product, which must outlast the tests' 150 ms waits
 * with room on any CPU (2000 took 0.33 s on an AMD EPYC core but 0.147 s on an Intel Xeon's, and two tests
 * failed there; 2600 takes ~0.32 s there).
 */
const SLOW_SIZE = 2600;

/** A repository of one model, 'slow', whose every run is a SLOW_SIZE² product, two images a run at most. */
function slowRepository(): string {
  const root = mkdtempSync(join(tmpdir(), 'models-slow-'));
  mkdirSync(join(root, 'slow', '1'), { recursive: true });
  writeFileSync(join(root, 'slow', '1', 'model.onnx'), hostileModel('slow-always', SLOW_SIZE));
  writeFileSync(join(root, 'slow', 'config.pbtxt'), 'max_batch_size: 2\n');
  return root;
}

const body = JSON.stringify({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: new Array(784).fill(0.5) }],
});
const request = (port: number) =>
  `POST /v2/models/slow/infer HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What `socket` receives, as it comes: its text, the HTTP statuses in it, and its closing. */
function reading(socket: Socket) {
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const statuses = () => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  return { text: () => text, statuses, closed };
}

/** This process's live model-runner children (serve/runner/), from /proc. */
function runnerProcesses(): number[] {
  const children = readdirSync('/proc/self/task').flatMap((task) =>
    readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
  return children.filter((pid) => {
    try {
      const state = /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return state !== 'Z' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('runner');
    } catch {
      return false; // gone
    }
  });
}

/**
 * A call of `method` (ServerLive by default) on a new HTTP/2 connection, its message sent whole: 'refused' if
 * the server refused it (REFUSED_STREAM, or a GOAWAY that does not cover it: not processed, a client retries
 * either), 'status <n>' if answered, `connection <code>` if the connection failed, else how it ended without a
 * status.
 */
function liveCallOutcome(
  port: number,
  method = 'ServerLive',
  message: Buffer = Buffer.alloc(5),
  headers: http2.OutgoingHttpHeaders = {},
): Promise<string> {
  return new Promise<string>((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let coveredUpTo = -1; // the last stream id a GOAWAY said the server may have processed
    const end = (outcome: string) => {
      resolve(outcome);
      session.destroy();
    };
    session.on('goaway', (_code, lastStreamId) => {
      coveredUpTo = lastStreamId;
    });
    session.on('error', (error: NodeJS.ErrnoException) => end(`connection ${error.code}`));
    const { stream, status } = grpcStream(session, method, headers);
    stream.on('error', () => {});
    stream.resume();
    stream.on('close', () => {
      if (status() !== undefined) return end(`status ${status()}`);
      if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) return end('refused');
      if (coveredUpTo >= 0 && (stream.id ?? 0) > coveredUpTo) return end('refused');
      end(`ended without a status (reset ${stream.rstCode}, GOAWAY up to ${coveredUpTo})`);
    });
    stream.end(message); // sent once connected
  });
}

/**
 * A ServerLive call by hand on raw HTTP/2 whose header block is sent in two halves `stallMs` apart (as a lost
 * segment would stall it): 'refused' (RST_STREAM REFUSED_STREAM), 'status' (answered), or how the connection
 * ended without either. `sent` resolves once the first half is out.
 */
function stalledHeaderCall(port: number, stallMs: number): { sent: Promise<void>; outcome: Promise<string> } {
  const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    return Buffer.concat([header, payload]);
  };
  // HPACK (RFC 7541): :method POST and :scheme http from the static table, the rest literals not indexed, their
  // names by static index (a 4-bit prefix: 15 and past take a second byte).
  const literal = (index: number, value: string) =>
    Buffer.concat([
      Buffer.from(index < 15 ? [index] : [15, index - 15]),
      Buffer.from([value.length]),
      Buffer.from(value),
    ]);
  const path = '/inference.GRPCInferenceService/ServerLive';
  const block = Buffer.concat([
    Buffer.from([0x83, 0x86]),
    literal(4, path), // :path
    literal(1, 'x'), // :authority
    literal(31, 'application/grpc'), // content-type
    Buffer.from([0, 2]),
    Buffer.from('te'),
    Buffer.from([8]),
    Buffer.from('trailers'),
  ]);
  const headers = frame(1, 0x4, 1, block); // END_HEADERS
  const half = 9 + Math.floor(block.length / 2);
  let settingsAcked = false;
  const socket = connect(port, '127.0.0.1');
  let sentResolve = () => {};
  const sent = new Promise<void>((resolve) => {
    sentResolve = resolve;
  });
  const outcome = new Promise<string>((resolve) => {
    let received = Buffer.alloc(0);
    let coveredUpTo = -1;
    const end = (what: string) => {
      resolve(what);
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 9 && received.length >= 9 + received.readUIntBE(0, 3)) {
        const length = received.readUIntBE(0, 3);
        const [type, flags] = [received[3], received[4] as number];
        const stream = received.readUInt32BE(5) & 0x7fffffff;
        const payload = received.subarray(9, 9 + length);
        received = received.subarray(9 + length);
        if (type === 4 && !(flags & 1)) settingsAcked = true; // acknowledged after the header block, not inside it
        if (type === 7) coveredUpTo = payload.readUInt32BE(0) & 0x7fffffff; // GOAWAY
        if (type === 3 && stream === 1)
          end(
            payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM
              ? 'refused'
              : `reset ${payload.readUInt32BE(0)}`,
          );
        if (type === 1 && stream === 1 && flags & 1) end('status');
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => end(`closed without an answer (GOAWAY up to ${coveredUpTo})`));
  });
  socket.on('connect', () => {
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
    socket.write(headers.subarray(0, half));
    sentResolve();
    setTimeout(() => {
      const ack = settingsAcked ? [frame(4, 1, 0, Buffer.alloc(0))] : [];
      if (!socket.destroyed)
        socket.write(Buffer.concat([headers.subarray(half), ...ack, frame(0, 1, 1, Buffer.alloc(5))]));
    }, stallMs);
  });
  return { sent, outcome };
}

/** A ModelInferRequest of one blank image for the model `slow`, encoded. */
function slowInferMessage(): Buffer {
  const Request = grpcProtoRoot().lookupType('inference.ModelInferRequest');
  const request = Request.fromObject({
    model_name: 'slow',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
    raw_input_contents: [Buffer.alloc(784 * 4)],
  });
  return Buffer.from(Request.encode(request).finish());
}

async function executions(server: RunningServer): Promise<number> {
  const stats = (await (await fetch(`${server.url}/v2/models/slow/stats`)).json()) as {
    model_stats: { execution_count: number }[];
  };
  return stats.model_stats[0]?.execution_count ?? -1;
}

/** The requests the slow model's version has queued or running (Triton's pending gauge). */
async function pending(server: RunningServer): Promise<number> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/nv_inference_pending_request_count\{[^}]*model="slow"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
}

/** Waits until no run is in flight or waiting (the pending gauge at 0 twice in a row). */
async function idle(server: RunningServer): Promise<void> {
  for (let zeros = 0; zeros < 2; ) {
    await sleep(300);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    zeros = /nv_inference_pending_request_count\{[^}]*model="slow"[^}]*\} 0\b/.test(metrics) ? zeros + 1 : 0;
  }
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('work nobody waits for', () => {
  it('requests whose clients hang up leave the queue unrun and count as 499', async () => {
    const lines: string[] = [];
    server = await startServer({ models: slowRepository(), port: 0, log: (l) => lines.push(l), requestLog: true });
    const port = server.port;
    const before = await executions(server);
    const sockets = await Promise.all(Array.from({ length: 12 }, () => open(port)));
    for (const s of sockets) s.write(request(port));
    // Every request queued (a run of two under way, ten waiting) before they hang up: a fixed 150 ms was not
    // always enough for all twelve to be read on a loaded machine, and a request never read is never logged.
    await until(async () => (await pending(server as RunningServer)) >= 10, 20);
    for (const s of sockets) s.destroy();
    await idle(server);
    // At most the runs in flight when they left (a run takes two images); 12 requests were six runs before.
    expect((await executions(server)) - before).toBeLessThanOrEqual(2);
    await sleep(100);
    const logged = lines.filter((l) => l.startsWith('POST /v2/models/slow/infer'));
    expect(logged).toHaveLength(12);
    expect(logged.filter((l) => / 499 /.test(l)).length).toBeGreaterThanOrEqual(10);
    expect(logged.filter((l) => / 5\d\d /.test(l))).toEqual([]);
  });

  it('pipelined requests of a connection that closes are dropped and logged 499, none as 200', async () => {
    const lines: string[] = [];
    server = await startServer({ models: slowRepository(), port: 0, log: (l) => lines.push(l), requestLog: true });
    const port = server.port;
    const before = await executions(server);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const socket = await open(port);
    // As many as a connection may pipeline: each listens on its socket's signal (past 10 Node warned).
    socket.write(request(port).repeat(16));
    await sleep(150);
    socket.destroy();
    await idle(server);
    expect((await executions(server)) - before).toBeLessThanOrEqual(2);
    await sleep(100);
    const logged = lines.filter((l) => l.startsWith('POST /v2/models/slow/infer'));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.filter((l) => !/ 499 /.test(l))).toEqual([]);
    process.off('warning', onWarning);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });
});

describe('a bounded queue', () => {
  it('past --max-queued-images a request is answered 503 queue_full with Retry-After', async () => {
    server = await startServer({ models: slowRepository(), port: 0, maxQueuedImages: 3 });
    const url = `${server.url}/v2/models/slow/infer`;
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    const full = answers.filter((r) => r.status === 503);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(full.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (const r of full) {
      expect(r.headers.get('retry-after')).toBe('1');
      expect((await refusalFrom(r)).code).toBe('queue_full');
    }
  });

  it('one address that fills the queue does not shut out another: it gives up its newest request, the other runs next', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, maxQueuedImages: 4 });
    server = running;
    const infer = (from: string) =>
      new Promise<{ status: number; code?: string; done: number }>((resolve, reject) => {
        const path = '/v2/models/slow/infer';
        const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
        const req = httpRequest(
          { host: '127.0.0.1', port: running.port, localAddress: from, path, method: 'POST', headers, agent: false },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => {
              text += d.toString();
            });
            res.on('end', () => {
              const status = res.statusCode ?? 0;
              const code = status === 200 ? undefined : refusalOf(JSON.parse(text), path).code;
              resolve({ status, code, done: performance.now() });
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    // 127.0.0.1: a run of one or two images under way, four waiting (the queue full), the rest refused.
    let refused = 0;
    const filler = Array.from({ length: 7 }, () =>
      infer('127.0.0.1').then((a) => {
        if (a.status === 503) refused++;
        return a;
      }),
    );
    // The queue is full (the gauge counts the four waiting); any request still arriving is refused at once.
    await until(async () => refused > 0 && (await pending(running)) === 4, 50);
    await sleep(100);
    const refusedBefore = refused;
    const other = await infer('127.0.0.2');
    const settled = await Promise.all(filler);
    expect(other.status).toBe(200);
    // Before: 503 queue_full for the other address, every time, while the first kept the queue full.
    expect(settled.filter((a) => a.status === 503).map((a) => a.code)).toEqual(
      Array(refusedBefore + 1).fill('queue_full'),
    );
    // It went in the run after the one under way (in turns), not behind the four waiting: two of the
    // first address's answers came after it.
    expect(settled.filter((a) => a.status === 200 && a.done > other.done).length).toBeGreaterThanOrEqual(2);
  });

  it('over gRPC a client is its address, not each of its connections', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, maxQueuedImages: 4 });
    server = running;
    const port = running.grpcPort as number;
    const sessions: http2.ClientHttp2Session[] = [];
    const from = (localAddress: string) => {
      const session = http2.connect(`http://127.0.0.1:${port}`, {
        createConnection: () => connect({ host: '127.0.0.1', port, localAddress }),
      });
      sessions.push(session);
      return session;
    };
    const call = (session: http2.ClientHttp2Session) =>
      rawCall(session, 'ModelInfer', frameOf(inferRequestBytes('slow', 1)));
    try {
      // 127.0.0.1 on eight connections, one call each: a run under way, four waiting (the queue full), the rest refused.
      const calls = Array.from({ length: 8 }, () => call(from('127.0.0.1')));
      await until(async () => (await pending(running)) === 4, 50);
      await sleep(100);
      // A new connection holds nothing yet, but it is the same client: refused, no room taken from itself.
      // Before: each connection counted as a client, and this one pushed out one of its own address's calls.
      expect(await call(from('127.0.0.1'))).toBe(String(grpc.status.UNAVAILABLE));
      // Another address gets in, taking room from the one holding all of it.
      expect(await call(from('127.0.0.2'))).toBe(String(grpc.status.OK));
      const statuses = await Promise.all(calls);
      expect(statuses.filter((s) => s === String(grpc.status.OK)).length).toBeLessThanOrEqual(5);
    } finally {
      for (const session of sessions) session.destroy();
    }
  });

  it('a stopping server runs what is queued for up to its exit timeout, then answers the rest 503 shutting_down', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 300 });
    const url = `${running.url}/v2/models/slow/infer`;
    const before = await executions(running);
    const answers = Array.from({ length: 8 }, () =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
        async (r) => ({ status: r.status, code: r.ok ? undefined : (await refusalFrom(r)).code }),
        () => ({ status: 0, code: 'connection closed' }),
      ),
    );
    await sleep(150);
    const ran = (await executions(running)) - before;
    await running.close();
    const settled = await Promise.all(answers);
    expect(settled.filter((a) => a.status === 503).every((a) => a.code === 'shutting_down')).toBe(true);
    // What ran in the 300 ms (plus the run then under way) answered 200; the rest never ran.
    const answered = settled.filter((a) => a.status === 200).length;
    expect(answered).toBeGreaterThanOrEqual(Math.min(8, 2 * ran));
    expect(settled.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    expect(answered + settled.filter((a) => a.status === 503).length).toBe(8);
  });

  it('a stopping server abandons a model load under way: answered 503 shutting_down at once, its runner killed', async () => {
    // Loading checks runs at batch sizes up to 64, each a SLOW_SIZE² product (0.3–0.7 s): seconds of loading.
    const root = slowRepository();
    writeFileSync(join(root, 'slow', 'config.pbtxt'), 'max_batch_size: 64\n');
    const running = await startServer({ models: root, port: 0, exitTimeoutMs: 300, modelControlMode: 'explicit' });
    const load = fetch(`${running.url}/v2/repository/models/slow/load`, { method: 'POST' }).then(
      async (r) => ({ status: r.status, code: r.ok ? undefined : (await refusalFrom(r)).code }),
      () => ({ status: 0, code: 'connection closed' }),
    );
    // Closed as soon as the load's runner process exists: its checks take seconds more.
    for (let i = 0; i < 100 && runnerProcesses().length === 0; i++) await sleep(50);
    expect(runnerProcesses().length).toBe(1);
    await running.close();
    // Before: the load kept going, its request unanswered until the connections were cut at the exit timeout
    // and a second, and its runner process kept the stopped server's event loop alive up to the load budget.
    expect(await load).toEqual({ status: 503, code: 'shutting_down' });
    await sleep(200);
    expect(runnerProcesses()).toEqual([]);
    expect(running.repository.versions('slow').some((v) => v.ready)).toBe(false);
  });
});

describe("a model's runner process", () => {
  it('is not stopped by a signal to the process group (Ctrl-C): the server decides when it ends', async () => {
    const running = await startServer({ models: slowRepository(), port: 0 });
    server = running;
    await until(() => runnerProcesses().length === 1, 50);
    const [runner] = runnerProcesses();
    // What Ctrl-C or systemd's stop sends every process of the group (the server's own handler not involved).
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.kill(runner as number, signal);
    await sleep(300);
    expect(runnerProcesses()).toEqual([runner]);
    const answer = await fetch(`${running.url}/v2/models/slow/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(answer.status).toBe(200);
  });
});

describe('a /predict batch split into runs', () => {
  it('goes into the queue whole or not at all: past the bound it is refused before any of it runs', async () => {
    server = await startServer({ models: slowRepository(), port: 0, maxQueuedImages: 4 });
    const predict = (count: number) =>
      fetch(`${server?.url}/predict/slow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: Array.from({ length: count }, () => new Array(784).fill(0.5)) }),
      });
    const before = await executions(server);
    // An empty queue takes a batch larger than the bound, whole (eight images: four runs of two; chunk by
    // chunk, the fourth would have found the queue full and the batch failed after its first run, every time).
    const first = predict(8);
    await sleep(100); // its first run under way, six images waiting
    const refused = await predict(3);
    expect(refused.status).toBe(503);
    expect((await refusalFrom(refused)).code).toBe('queue_full');
    expect((await first).status).toBe(200);
    await idle(server);
    expect((await executions(server)) - before).toBe(4); // the refused batch ran no part of itself
  });
});

describe('a stopping server', () => {
  it('says it is not ready and refuses new inference on connections still open', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 3000 });
    // Three connections, each with a run under way, which keeps it open; one new request on each after.
    const sockets = await Promise.all([1, 2, 3].map(() => open(running.port)));
    const received = sockets.map(reading);
    for (const socket of sockets) socket.write(request(running.port));
    await sleep(100);
    const closing = running.close();
    await sleep(50);
    sockets[0]?.write(`GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    sockets[1]?.write(`GET /v2/models/slow/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    sockets[2]?.write(request(running.port));
    await closing;
    await sleep(100);
    for (const socket of sockets) socket.destroy();
    // The runs under way answer; then not ready, not ready, and the new request refused (before: 200, 200, 200),
    // each closing its connection.
    expect(received.map((r) => r.statuses())).toEqual([
      ['200', '400'],
      ['200', '400'],
      ['200', '503'],
    ]);
    expect(received[2]?.text()).toContain('shutting_down');
  });

  it('answers every pipelined request that arrived before it began to stop, though their turns come after', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 30_000 });
    const socket = await open(running.port);
    const received = reading(socket);
    socket.write(request(running.port).repeat(4)); // one runs, three wait for their turns
    await sleep(100);
    await running.close();
    socket.destroy();
    // Before: 200 for the first runs, then 503 shutting_down (at its turn) and nothing for the rest.
    expect(received.statuses()).toEqual(['200', '200', '200', '200']);
  }, 30_000);

  it('keeps accepting while what arrived drains: a connection made meanwhile is answered, not reset', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 30_000 });
    const busy = await open(running.port);
    busy.on('data', () => {});
    busy.write(request(running.port)); // a run under way
    await sleep(100);
    const closing = running.close();
    await sleep(50);
    // Before: the listener closed at once, and a connection still in its accept queue was reset.
    const late = await open(running.port);
    const received = reading(late);
    late.write(request(running.port));
    await closing;
    await received.closed;
    busy.destroy();
    expect(received.text()).toMatch(/^HTTP\/1\.1 503/);
    expect(received.text()).toContain('shutting_down');
  }, 30_000);

  it('answers a burst of new connections still in the accept queue when it is asked to stop with nothing in flight', async () => {
    // Closed the moment no request was in flight, the listener reset 113 of 120 such requests (an outside attack).
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 30_000 });
    const sockets = Array.from({ length: 20 }, () => connect(running.port, '127.0.0.1'));
    const received = sockets.map((socket) => {
      socket.on('error', () => {});
      socket.write(request(running.port)); // sent once connected
      return reading(socket);
    });
    // Asked to stop before this process has accepted any of them: they wait in the kernel's queue.
    await running.close();
    await Promise.all(received.map((r) => r.closed));
    // Each answered (new inference after the stop: 503 shutting_down), none reset without a word.
    expect(received.map((r) => r.statuses()[0])).toEqual(new Array(20).fill('503'));
  }, 30_000);

  it('answers a request sent on a kept-alive connection just after it began to stop (Node closed it unanswered)', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 30_000 });
    const socket = await open(running.port);
    const received = reading(socket);
    const live = 'GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    socket.write(live);
    await until(() => received.text().includes('"live"'));
    const closing = running.close();
    await sleep(100);
    socket.write(live);
    await closing;
    await received.closed;
    expect(received.statuses()).toEqual(['200', '200']);
    // and closes the connection with it: kept alive, a client asking again and again held the server.
    expect(received.text().split('HTTP/1.1 ')[2]).toMatch(/^connection: close\r$/im);
  }, 30_000);

  it('closes connections without a request at once, and one whose request stopped half-way after a moment (each held it for the whole exit timeout)', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, exitTimeoutMs: 120_000 });
    const silent = await open(running.port);
    const halfWay = await open(running.port);
    const honest = await open(running.port);
    const sockets = [silent, halfWay, honest];
    for (const s of sockets) s.on('error', () => {});
    const received = sockets.map(reading);
    halfWay.write('GET /v2/health/live HTTP/1.1\r\nHo'); // and nothing more
    honest.write(request(running.port)); // a run under way: answered before the server stops
    await sleep(100);
    await running.close(); // within the test's timeout: not the 120 s exit timeout
    await Promise.all(received.map((r) => r.closed));
    expect(received[2]?.text()).toMatch(/^HTTP\/1\.1 200/);
  }, 30_000);

  it('answers a burst of new gRPC connections still in the accept queue when it is asked to stop with no call under way', async () => {
    // The front listener closed at once: 23–31 of 40 such connections were reset without a byte (an outside attack).
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 30_000 });
    const calls = Array.from({ length: 20 }, () => liveCallOutcome(running.grpcPort as number));
    // Asked to stop before this process has accepted any of them: they wait in the kernel's queue.
    await running.close();
    // Each call refused (it did not run: a client retries it elsewhere), no connection reset.
    expect(await Promise.all(calls)).toEqual(new Array(20).fill('refused'));
  }, 30_000);

  it('refuses every gRPC call that starts while it stops, as its idle connections are swept, never ending one without a status', async () => {
    // The sweep (every 250 ms, from 500 ms on) closed connections carrying only a call whose refusal had not yet
    // gone out: the call ended with no status after a GOAWAY that covered it (grpc-js: INTERNAL; an outside attack).
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 30_000 });
    const call = () => liveCallOutcome(running.grpcPort as number);
    const closing = running.close();
    // A new connection every 20 ms keeps the listener open for its first second; two more every 3 ms around each
    // sweep that closes sessions (at 500 and 750 ms).
    const calls: Promise<string>[] = [];
    const started = performance.now();
    while (performance.now() - started < 950) {
      const t = performance.now() - started;
      const nearSweep = Math.abs(t - 500) < 40 || Math.abs(t - 750) < 40;
      calls.push(call());
      await sleep(nearSweep ? 3 : 20);
    }
    await closing;
    const outcomes = await Promise.all(calls);
    // Refused (or, once the listener has closed, not connected): never a call ended without a word.
    expect(outcomes.filter((o) => o !== 'refused' && o !== 'connection ECONNREFUSED')).toEqual([]);
    expect(outcomes.filter((o) => o === 'refused').length).toBeGreaterThan(40);
  }, 30_000);

  it('refuses a gRPC call whose header block stalled across the stop, rather than cover it with its GOAWAY and cut it', async () => {
    // A session with no call was closed by the sweep at 500 ms under a GOAWAY covering the stream whose header
    // block had begun, and cut at 750 ms: that call ended without a status (a re-attack: 20 of 20 blocks begun
    // 50 ms before the stop and finished 900 ms after). A block begun gets 1 s, as an HTTP request's headers.
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 30_000 });
    const calls = Array.from({ length: 4 }, () => stalledHeaderCall(running.grpcPort as number, 900));
    await Promise.all(calls.map((call) => call.sent));
    await sleep(50);
    await running.close();
    expect(await Promise.all(calls.map((call) => call.outcome))).toEqual(new Array(4).fill('refused'));
  }, 30_000);

  it('refuses a ModelInfer that starts while it stops whatever its message, before and after the exit timeout (nothing of it runs)', async () => {
    // Its handler answered in the turn before the refusal: a message our checks reject INVALID_ARGUMENT, and
    // once the exit timeout had passed every one UNAVAILABLE, which grpc-js does not retry (an outside attack).
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 100 });
    const port = running.grpcPort as number;
    const valid = frameOf(slowInferMessage());
    // A call whose message is still arriving holds the drain, and the listener with it, past the exit timeout.
    const holder = http2.connect(`http://127.0.0.1:${port}`);
    holder.on('error', () => {});
    const held = callStream(holder, 'ModelInfer');
    held.on('error', () => {});
    held.write(valid.subarray(0, 100));
    await sleep(200);
    const closing = running.close();
    const early = [liveCallOutcome(port, 'ModelInfer', Buffer.alloc(5)), liveCallOutcome(port, 'ModelInfer', valid)];
    await sleep(300); // past the exit timeout: the models no longer take requests
    const late = [liveCallOutcome(port, 'ModelInfer', Buffer.alloc(5)), liveCallOutcome(port, 'ModelInfer', valid)];
    expect(await Promise.all([...early, ...late])).toEqual(['refused', 'refused', 'refused', 'refused']);
    await closing;
    holder.destroy();
  }, 30_000);

  it('answers a gzip call whose message is being decompressed when it is asked to stop (it was refused as never asked for)', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 30_000 });
    // The stop begins the moment the server starts to inflate the message (whole, with its half-close).
    let closing: Promise<void> | undefined;
    const restore = spyOnGunzip(() => {
      closing ??= running.close();
    });
    try {
      const outcome = await liveCallOutcome(
        running.grpcPort as number,
        'ModelInfer',
        frameOf(gzipSync(slowInferMessage()), true),
        { 'grpc-encoding': 'gzip' },
      );
      expect(closing).toBeDefined();
      expect(outcome).toBe('status 0');
    } finally {
      restore();
      await (closing ?? running.close());
    }
  }, 30_000);

  it('answers the gRPC calls queued when it is asked to stop (before: their sockets were cut at once)', async () => {
    const running = await startServer({ models: slowRepository(), port: 0, grpcPort: 0, exitTimeoutMs: 5000 });
    const message = slowInferMessage();
    const client = new grpc.Client(`127.0.0.1:${running.grpcPort}`, grpc.credentials.createInsecure());
    const calls = Array.from({ length: 8 }, () =>
      unaryCall(client, 'ModelInfer', message).then(({ status, details }) =>
        status === 'OK' ? 'OK' : `${status} ${details}`,
      ),
    );
    await sleep(200);
    await running.close();
    const results = await Promise.all(calls);
    client.close();
    // Eight images are four runs of two, well within the exit timeout: every call answered.
    expect(results).toEqual(new Array(8).fill('OK'));
  });
});
