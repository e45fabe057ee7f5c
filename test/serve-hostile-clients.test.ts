/**
 * Clients that hold connections without finishing requests: silent sockets, headers a byte at a time,
 * bodies at a trickle, floods of connections from one address. Timeouts hold to the second; a flood
 * can't lock out a client that sends its request at once (the oldest idle connection is closed to make
 * room), and one slow uploader can't delay another address's request.
 */
import { createServer, request as httpRequest } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardConnections } from '../serve/connections.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';

let server: RunningServer;
const TIMEOUTS = { headersMs: 1000, requestMs: 2000 };

beforeAll(async () => {
  server = await startServer({ models: makeTinyRepository(), port: 0, timeouts: TIMEOUTS });
}, 60_000);
afterAll(async () => {
  await server?.close();
}, 30_000);

const open = (localAddress?: string) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port, localAddress }, () => resolve(socket));
    socket.on('error', reject);
  });
/** Milliseconds until the server closes `socket` (capped). */
const closedAfter = (socket: Socket, capMs: number) =>
  new Promise<number>((resolve) => {
    const start = performance.now();
    socket.on('error', () => {});
    socket.resume();
    const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), capMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - start);
    });
  });
const timedHealth = async () => {
  const start = performance.now();
  const response = await fetch(`${server.url}/v2/health/live`);
  expect(response.status).toBe(200);
  return performance.now() - start;
};
/** A raw socket from `localAddress` that has sent a POST's head (and nothing of its body yet). */
const postHead = (port: number, localAddress: string, path: string, type: string, length: number) => {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n`);
  return socket;
};
const drip = (socket: Socket, text: string, everyMs: number) => {
  let i = 0;
  const timer = setInterval(() => {
    if (i >= text.length || socket.destroyed) return clearInterval(timer);
    socket.write(text[i++] as string);
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
};

describe('slow clients are cut off on time', () => {
  it('a silent connection, headers a byte at a time and a trickling body each close within a second of their limit', async () => {
    const silent = await open();
    const headers = await open();
    drip(headers, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n', 200);
    const body = await open();
    body.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n');
    drip(body, '['.padEnd(100000, '0'), 100);
    const [a, b, c] = await Promise.all([
      closedAfter(silent, 10_000),
      closedAfter(headers, 10_000),
      closedAfter(body, 10_000),
    ]);
    expect(a).toBeGreaterThan(TIMEOUTS.headersMs - 100);
    expect(a).toBeLessThan(TIMEOUTS.headersMs + 1000);
    expect(b).toBeLessThan(TIMEOUTS.headersMs + 1000);
    expect(c).toBeGreaterThan(TIMEOUTS.requestMs - 100);
    expect(c).toBeLessThan(TIMEOUTS.requestMs + 1000);
  });
});

describe('floods', () => {
  it('600 silent connections from one address: health from that address and another still answers', async () => {
    const evictedBefore = server.connections.evicted;
    const sockets = await Promise.all(Array.from({ length: 600 }, () => open().catch(() => undefined)));
    for (const s of sockets) s?.on('error', () => {});
    const times: number[] = [];
    for (let i = 0; i < 10; i++) times.push(await timedHealth());
    expect(Math.max(...times)).toBeLessThan(2000);
    // Past the per-address cap (256), the oldest silent connections were closed for the newer ones.
    expect(server.connections.evicted - evictedBefore).toBeGreaterThanOrEqual(600 - 256);
    for (const s of sockets) s?.destroy();
  });

  it('uploads trickling in from four addresses starve nobody: a request from a fifth answers at once', async () => {
    const uploads: Socket[] = [];
    for (const last of [2, 3, 4, 5])
      for (let i = 0; i < 10; i++) {
        const u = await open(`127.0.0.${last}`);
        u.on('error', () => {});
        u.write(
          'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500000\r\n\r\n{',
        );
        drip(u, '"pixels":['.padEnd(5000, '0,'), 100);
        uploads.push(u);
      }
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      const response = await fetch(`${server.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pixels: Array.from({ length: 784 }, (_, k) => (k % 29) / 29) }),
      });
      expect(response.status).toBe(200);
      expect(performance.now() - start).toBeLessThan(2000);
    }
    for (const u of uploads) u.destroy();
  });

  it('bodies stalled midway hold at most the budget; the rest wait unread, and a small request still answers', async () => {
    const budget = { freeBytes: 16 * 1024, total: 256 * 1024, perClient: 128 * 1024 };
    const small = await startServer({ models: makeTinyRepository(), port: 0, bodyBudget: budget });
    const sockets: Socket[] = [];
    try {
      for (const last of [2, 3, 4])
        for (let i = 0; i < 6; i++) {
          const s = postHead(small.port, `127.0.0.${last}`, '/predict', 'application/octet-stream', 900000);
          s.write(Buffer.alloc(100 * 1024)); // 100 KiB of the 900 KB, then silence
          sockets.push(s);
        }
      let metrics = '';
      const deadline = Date.now() + 10_000;
      while (!/^http_request_bodies_waiting [1-9]/m.test(metrics) && Date.now() < deadline)
        metrics = await (await fetch(`${small.url}/metrics`)).text();
      const held = Number(/^http_request_body_budget_bytes (\d+)/m.exec(metrics)?.[1]);
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(budget.total);
      expect(metrics).toMatch(/^http_request_bodies_waiting [1-9]/m);
      const response = await fetch(`${small.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pixels: Array.from({ length: 784 }, (_, k) => (k % 29) / 29) }),
      });
      expect(response.status).toBe(200);
      for (const s of sockets) s.destroy();
      // Clients that hung up give their bytes and their places in the queue back.
      const freed = Date.now() + 10_000;
      while (!/^http_request_bodies_waiting 0$/m.test(metrics) && Date.now() < freed)
        metrics = await (await fetch(`${small.url}/metrics`)).text();
      expect(metrics).toMatch(/^http_request_body_budget_bytes 0$/m);
      expect(metrics).toMatch(/^http_request_bodies_waiting 0$/m);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('bodies stalled midway from four addresses give their bytes back when a fifth address waits for them', async () => {
    // Each stalled body holds 60 KiB of its address's 80 KiB share and is reading (not waiting on us): 240 of
    // the 256 KiB total. A 100 KB body from a fifth address needs more: it waited until the request timeout.
    const budget = {
      freeBytes: 16 * 1024,
      total: 256 * 1024,
      perClient: 80 * 1024,
      slowWindowMs: 500,
      minBytesPerSecond: 4096,
    };
    const small = await startServer({ models: makeTinyRepository(), port: 0, bodyBudget: budget });
    const stalled = [2, 3, 4, 5].map((last) => {
      const s = postHead(small.port, `127.0.0.${last}`, '/predict', 'application/octet-stream', 900000);
      s.write(Buffer.alloc(76 * 1024));
      const answer = new Promise<string>((resolve) => {
        let text = '';
        s.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        s.once('close', () => resolve(text));
      });
      return { socket: s, answer };
    });
    try {
      let metrics = '';
      const deadline = Date.now() + 10_000;
      while (
        Number(/^http_request_body_budget_bytes (\d+)/m.exec(metrics)?.[1] ?? 0) < 4 * 60 * 1024 &&
        Date.now() < deadline
      )
        metrics = await (await fetch(`${small.url}/metrics`)).text();
      const response = await fetch(`${small.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(100_000),
        signal: AbortSignal.timeout(15_000),
      });
      expect(response.status).not.toBe(408);
      expect(response.status).toBeLessThan(500);
      for (const { answer } of stalled) {
        const text = await answer;
        expect(text).toMatch(/^HTTP\/1\.1 408/);
        expect(text).toContain('body_too_slow');
      }
    } finally {
      for (const { socket } of stalled) socket.destroy();
      await small.close();
    }
  });

  it('a body past the limit gives its budget back at once, while it is read on to its end for the 413', async () => {
    const small = await startServer({ models: makeTinyRepository(), port: 0 });
    const socket = postHead(small.port, '127.0.0.11', '/predict', 'application/octet-stream', 1_500_000);
    const heldBytes = async () =>
      Number(/^http_request_body_budget_bytes (\d+)/m.exec(await (await fetch(`${small.url}/metrics`)).text())?.[1]);
    const until = async (done: (bytes: number) => boolean) => {
      const deadline = Date.now() + 10_000;
      let bytes = await heldBytes();
      while (!done(bytes) && Date.now() < deadline) bytes = await heldBytes();
      return bytes;
    };
    try {
      socket.write(Buffer.alloc(900_000));
      expect(await until((bytes) => bytes > 500_000)).toBeGreaterThan(500_000);
      socket.write(Buffer.alloc(300_000)); // past the 1 MiB limit; 300 KB still to come
      expect(await until((bytes) => bytes === 0)).toBe(0);
      expect(socket.destroyed).toBe(false);
    } finally {
      socket.destroy();
      await small.close();
    }
  });

  it('bodies that each hold part of the budget and all wait for more still finish (no one waits on the others until 408)', async () => {
    // 16 bodies of 100 KiB from one address, each sent in two halves: the first halves alone take more than
    // the address's budget, so every body holding bytes waits for more — none of them will give any back.
    const budget = { freeBytes: 16 * 1024, total: 1024 * 1024, perClient: 256 * 1024 };
    const small = await startServer({
      models: makeTinyRepository(),
      port: 0,
      bodyBudget: budget,
      timeouts: { headersMs: 10_000, requestMs: 15_000 },
    });
    const sockets: Socket[] = [];
    try {
      const size = 100 * 1024;
      const answers = Array.from({ length: 16 }, () => {
        const s = postHead(small.port, '127.0.0.6', '/predict', 'application/octet-stream', size);
        sockets.push(s);
        s.write(Buffer.alloc(size / 2));
        return new Promise<string>((resolve) => {
          let text = '';
          s.on('data', (chunk: Buffer) => {
            text += chunk.toString('latin1');
            if (text.includes('\r\n')) resolve(text.split('\r\n')[0] as string);
          });
          s.on('close', () => resolve(text.split('\r\n')[0] ?? 'closed'));
        });
      });
      await new Promise((r) => setTimeout(r, 300));
      for (const s of sockets) s.write(Buffer.alloc(size / 2));
      // A float32 body of 100 KiB is not whole images: each answers 400 once read (408 if it never is).
      expect(await Promise.all(answers)).toEqual(new Array(16).fill('HTTP/1.1 400 Bad Request'));
      const metrics = await (await fetch(`${small.url}/metrics`)).text();
      expect(metrics).toMatch(/^http_request_body_budget_bytes 0$/m);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('bodies made to wait in turn cannot walk an address past its share: one body at a time goes over', async () => {
    // An outside attack's cascade: 10 bodies from one address; from the newest to the oldest, each sends
    // 96 KiB, the body before it 1 KiB more (so every body holding bytes waits), then 300 KiB. Letting the
    // oldest waiter through at each such moment let the address hold 26× the total.
    const budget = { freeBytes: 16 * 1024, total: 512 * 1024, perClient: 256 * 1024 };
    const small = await startServer({ models: makeTinyRepository(), port: 0, bodyBudget: budget });
    const sockets: Socket[] = [];
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      for (let i = 0; i < 10; i++) {
        const s = postHead(small.port, '127.0.0.7', '/v2/models/tiny/infer', 'application/json', 1000000);
        s.write(Buffer.alloc(8 * 1024, 0x20));
        sockets.push(s);
        await pause(20);
      }
      const send = (i: number, bytes: number) => sockets[i]?.write(Buffer.alloc(bytes, 0x20));
      send(9, 300 * 1024);
      await pause(150);
      let most = 0;
      const held = async () => {
        const metrics = await (await fetch(`${small.url}/metrics`)).text();
        most = Math.max(most, Number(/^http_request_body_budget_bytes (\d+)/m.exec(metrics)?.[1]));
      };
      for (let i = 8; i >= 0; i--) {
        send(i, 96 * 1024);
        await pause(40);
        send(i + 1, 1024);
        await pause(40);
        send(i, 300 * 1024);
        await pause(80);
        await held();
      }
      // The address's share and one body (the body limit, 1 MiB) past it, at most.
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(budget.perClient + 1024 * 1024);
      // And another address's small body is still read and answered.
      const other = await fetch(`${small.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pixels: Array.from({ length: 784 }, (_, k) => (k % 29) / 29) }),
      });
      expect(other.status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('a compressed body counts what it decodes to: 1 KB of gzip that decodes to 200 KB waits for room', async () => {
    const budget = { freeBytes: 16 * 1024, total: 256 * 1024, perClient: 256 * 1024 };
    const small = await startServer({ models: makeTinyRepository(), port: 0, bodyBudget: budget });
    // Another address holds most of the total with a body stalled midway (it is reading, not stuck).
    const holder = postHead(small.port, '127.0.0.8', '/predict', 'application/octet-stream', 900000);
    try {
      holder.write(Buffer.alloc(200 * 1024));
      await new Promise((r) => setTimeout(r, 200));
      const json = JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(100_000).fill(0) }],
      });
      let answered = false;
      const answer = fetch(`${small.url}/v2/models/tiny/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(json),
      }).then((r) => {
        answered = true;
        return r.status;
      });
      await new Promise((r) => setTimeout(r, 500));
      expect(answered).toBe(false); // its 200 KB decoded do not fit beside the stalled body's 184 KiB
      holder.destroy();
      expect(await answer).toBe(400); // then read, decoded and checked: 100,000 values for a 784-value shape
    } finally {
      holder.destroy();
      await small.close();
    }
  });

  it('a body the server stopped reading (waiting for the budget) is not closed as an idle connection', async () => {
    const budget = { freeBytes: 1024, total: 256 * 1024, perClient: 256 * 1024, slowWindowMs: 60_000 };
    const small = await startServer({ models: makeTinyRepository(), port: 0, maxConnections: 40, bodyBudget: budget });
    const sockets: Socket[] = [];
    try {
      // Address .12 holds most of the budget with a body that trickles on (so it stays recently active);
      // .13's body then waits for the budget, silent because the server stopped reading it.
      const holder = postHead(small.port, '127.0.0.12', '/predict', 'application/octet-stream', 200_000);
      holder.write(Buffer.alloc(250 * 1024));
      drip(holder, 'x'.repeat(100), 50);
      sockets.push(holder);
      await new Promise((r) => setTimeout(r, 300));
      // All of it sent, but more than Node reads ahead of a paused body: the request is not complete.
      const honest = postHead(small.port, '127.0.0.13', '/predict', 'application/octet-stream', 1_000_000);
      honest.write(Buffer.alloc(1_000_000));
      sockets.push(honest);
      await new Promise((r) => setTimeout(r, 300));
      // Then connections from .14 that go silent, past the cap: the guard must close those, not .13.
      for (let i = 0; i < 60; i++) sockets.push(postHead(small.port, '127.0.0.14', '/predict', 'text/plain', 10));
      await new Promise((r) => setTimeout(r, 1000));
      expect(small.connections.evicted).toBeGreaterThan(0);
      expect(honest.destroyed || honest.readableEnded).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('stalled uploads from several addresses filling every connection: the least recently active are closed for a probe', async () => {
    const small = await startServer({
      models: makeTinyRepository(),
      port: 0,
      maxConnections: 200,
      maxConnectionsPerClient: 64,
    });
    const sockets: Socket[] = [];
    try {
      for (const last of [2, 3, 4, 5])
        for (let i = 0; i < 64; i++) {
          const s = postHead(small.port, `127.0.0.${last}`, '/v2/models/tiny/infer', 'application/json', 100000);
          s.write('{');
          sockets.push(s);
        }
      await new Promise((r) => setTimeout(r, 500));
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        const response = await fetch(`${small.url}/v2/health/live`);
        expect(response.status).toBe(200);
        expect(performance.now() - start).toBeLessThan(2000);
      }
      expect(small.connections.evicted).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
      await small.close();
    }
  });

  it('a flood of trickling connections never closes one whose whole request is waiting for the answer', async () => {
    // The server takes 1.5 s to answer /slow (a model at work); four addresses fill every slot with headers
    // a byte every 100 ms, so each looks more recently active than the waiting client.
    const plain = createServer((req, res) => {
      setTimeout(() => res.end('done'), req.url === '/slow' ? 1500 : 0);
    });
    const guard = guardConnections(plain, { total: 40, perClient: 40, pipelined: 4 });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as { port: number }).port;
    const flood: Socket[] = [];
    try {
      const answer = new Promise<number>((resolve, reject) => {
        const r = httpRequest({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        r.on('error', reject);
        r.end();
      });
      await new Promise((r) => setTimeout(r, 100));
      for (const last of [2, 3, 4, 5])
        for (let i = 0; i < 40; i++) {
          const f = connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${last}` });
          f.on('error', () => {});
          f.once('connect', () => drip(f, `GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}`, 100));
          flood.push(f);
        }
      expect(await answer).toBe(200);
      expect(guard.evicted).toBeGreaterThan(100); // the flood did fill every slot, over and over
    } finally {
      for (const f of flood) f.destroy();
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    }
  });

  it('a byte-stream front (gRPC) under a flood of silent connections keeps the one whose client spoke and awaits its answer', async () => {
    // The server answers 1.5 s after a client's bytes (a model at work); the flood never speaks.
    const front = createNetServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () =>
        setTimeout(() => {
          if (!socket.destroyed) {
            guard.answered(socket);
            socket.end('answer');
          }
        }, 1500),
      );
    });
    const guard = guardConnections(front, { total: 40, perClient: 40, pipelined: 4 }, 'bytes');
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const port = (front.address() as { port: number }).port;
    const flood: Socket[] = [];
    try {
      const answer = new Promise<string>((resolve) => {
        const client = connect({ host: '127.0.0.1', port }, () => client.write('request'));
        let text = '';
        client.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        client.on('error', () => {});
        client.on('close', () => resolve(text));
      });
      await new Promise((r) => setTimeout(r, 100));
      for (let round = 0; round < 3; round++)
        for (const last of [2, 3, 4, 5])
          for (let i = 0; i < 20; i++) {
            const f = connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${last}` });
            f.on('error', () => {});
            flood.push(f);
          }
      expect(await answer).toBe('answer');
      expect(guard.evicted).toBeGreaterThan(100);
    } finally {
      for (const f of flood) f.destroy();
      await new Promise((r) => front.close(r));
    }
  });

  it('thousands of pipelined requests on one socket that never reads: the socket is closed, memory and health unharmed', async () => {
    const rssBefore = process.memoryUsage().rss;
    const socket = await open();
    socket.on('error', () => {});
    socket.pause(); // never reads an answer
    socket.write('GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2000));
    const closed = await closedAfter(socket, 10_000);
    expect(closed).toBeLessThan(10_000);
    expect(server.connections.overPipelined).toBeGreaterThan(0);
    expect(await timedHealth()).toBeLessThan(2000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 2 ** 20);
  });
});
