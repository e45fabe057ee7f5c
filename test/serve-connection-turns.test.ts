/**
 * Pipelined requests take turns per connection: a request behind an answer not yet sent is not handed to the
 * app, so its body is not read (an outside attack's 256 connections × 16 pipelined 200 KB requests, never
 * reading their answers, held +1.2 GiB of bodies and answers waiting behind the first).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { inTurnPerConnection } from '../serve/connection-turns.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';

const BODY = 200_000;
const request = (path: string, bytes = BODY) =>
  Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${bytes}\r\n\r\n`),
    Buffer.alloc(bytes, 0x61),
  ]);

let server: Server | undefined;
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients) c.destroy();
  clients.length = 0;
  if (server) await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server whose handler reads each body whole, as the app does, and answers `/hold` only when released. */
async function serve() {
  const started: string[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const handler = async (incoming: IncomingMessage, outgoing: ServerResponse) => {
    started.push(incoming.url ?? '');
    let bytes = 0;
    for await (const chunk of incoming) bytes += (chunk as Buffer).length;
    if (incoming.url === '/hold') await held;
    outgoing.end(`${incoming.url} ${bytes}\n`);
  };
  server = createServer(inTurnPerConnection(handler));
  let serverSide: Socket | undefined;
  server.on('connection', (s: Socket) => {
    serverSide = s;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { started, release, port, bytesRead: () => serverSide?.bytesRead ?? 0 };
}

it('a request pipelined behind an unsent answer is not started and its body not read until that answer is out', async () => {
  const { started, release, port, bytesRead } = await serve();
  const client = connect(port, '127.0.0.1');
  clients.push(client);
  let answers = '';
  client.on('data', (d: Buffer) => {
    answers += d.toString();
  });
  const paths = ['/hold', ...Array.from({ length: 15 }, (_, i) => `/next${i}`)];
  client.write(Buffer.concat(paths.map((path) => request(path))));
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(started).toEqual(['/hold']);
  // The first body and at most a little of the second: not the 3 MB sent.
  expect(bytesRead()).toBeLessThan(2 * BODY);
  release();
  for (const until = Date.now() + 10_000; Date.now() < until && started.length < paths.length; )
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(started).toEqual(paths);
  // Answered in order, each with its whole body read.
  expect([...answers.matchAll(/\/(\w+) (\d+)\n/g)].map((m) => `/${m[1]} ${m[2]}`)).toEqual(
    paths.map((p) => `${p} ${BODY}`),
  );
});

it('requests waiting behind an answer are dropped unrun when their connection closes', async () => {
  const { started, release, port } = await serve();
  const client = connect(port, '127.0.0.1');
  clients.push(client);
  // Small bodies: the server reads on and sees the close (behind a large unread body it would only see it
  // once the next request's turn reads that body).
  client.write(Buffer.concat(['/hold', '/a', '/b'].map((path) => request(path, 1000))));
  await new Promise((resolve) => setTimeout(resolve, 300));
  client.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  release();
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(started).toEqual(['/hold']);
});

it('connections take no turns from each other', async () => {
  const { started, release, port } = await serve();
  const first = connect(port, '127.0.0.1');
  const second = connect(port, '127.0.0.1');
  clients.push(first, second);
  first.write(request('/hold'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  second.write(request('/other'));
  const [answer] = (await once(second, 'data')) as [Buffer];
  expect(answer.toString()).toContain(`/other ${BODY}`);
  expect(started).toEqual(['/hold', '/other']);
  release();
});

describe('a malformed request pipelined behind good ones', () => {
  let running: RunningServer | undefined;
  afterAll(async () => {
    await running?.close();
  });
  const cases: [string, string][] = [
    [
      'a bad chunk size',
      'POST /v2/health/live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n0\r\n\r\n',
    ],
    [
      'both Transfer-Encoding and Content-Length',
      'POST /v2/health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
  ];
  for (const [what, bad] of cases)
    it(`${what}: the good requests are answered first, then its 400, in order (an outside attack read the 400 as the first answer)`, async () => {
      running ??= await startServer({ models: makeTinyRepository(), port: 0 });
      const client = connect(running.port, '127.0.0.1');
      clients.push(client);
      const good = 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n';
      let received = '';
      client.on('data', (d: Buffer) => {
        received += d.toString('latin1');
      });
      const ended = new Promise((resolve) => client.once('close', resolve));
      client.write(good + good + good + bad);
      await ended;
      const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      expect(statuses).toEqual(['200', '200', '200', '400']);
    });
});
