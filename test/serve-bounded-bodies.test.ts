/**
 * Every route that validates a JSON body reads it through the server's bounded reader, never through a
 * library validator that reads the whole body first: a body claimed at 2 GB is refused with 413 from its
 * headers, a chunked body that never ends is cut off at twice the limit (a reader waiting for its end
 * would hang), and one just over the limit gets the reader's own 413 — the answers clients already know.
 * Nor does a library validator stand behind the reader: JSON is taken whatever the content type says
 * (@hono/zod-openapi's would 415 it), and refused in the project's words.
 */
import { connect, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { refusalBody } from './helpers/refusal.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

const LIMIT = 16 * 1024;
/** The routes whose JSON bodies are checked by a schema. */
const ROUTES = [
  '/predict',
  '/predict/tiny/1',
  '/v2/models/tiny/infer',
  '/v2/models/tiny/versions/1/infer',
  '/v2/repository/index',
  '/v2/repository/models/tiny/load',
  '/v2/repository/models/tiny/unload',
];

const server = useTinyServer({ maxBodyBytes: LIMIT, modelControlMode: 'explicit', loadModels: ['tiny'] });

const open = () =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port }, () => resolve(socket));
    socket.on('error', reject);
  });

/** The first response on `socket`: status and JSON body (it must come within `capMs`). */
const response = (socket: Socket, capMs = 5000) =>
  new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no answer')), capMs);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.subarray(0, end).toString('latin1');
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
      if (data.length < end + 4 + length) return;
      clearTimeout(timer);
      resolve({
        status: Number(head.split(' ')[1]),
        body: JSON.parse(data.subarray(end + 4, end + 4 + length).toString()),
      });
    });
  });

const head = (path: string, framing: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n`;
const tooLarge = (message: string, path = '/predict') => refusalBody(path, 'payload_too_large', message);

it('a body claimed at 2 GB is refused with 413 while its first bytes arrive', async () => {
  for (const path of ROUTES) {
    const socket = await open();
    try {
      socket.write(head(path, 'Content-Length: 2000000000\r\n'));
      socket.write(`{"inputs":[${'0,'.repeat(LIMIT / 2)}`);
      expect(await response(socket), path).toEqual({
        status: 413,
        body: tooLarge(`request body exceeds ${LIMIT} bytes`, path),
      });
    } finally {
      socket.destroy();
    }
  }
});

it('a chunked body that never ends is cut off at twice the limit, not read to its end', async () => {
  for (const path of ROUTES) {
    const socket = await open();
    try {
      socket.write(head(path, 'Transfer-Encoding: chunked\r\n'));
      const chunk = `{"a":"${'x'.repeat(4096 - 8)}",`;
      for (let sent = 0; sent < LIMIT * 4; sent += chunk.length)
        socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      // No last chunk: whatever waits for the body's end waits forever, and the answer never comes.
      expect(await response(socket), path).toEqual({
        status: 413,
        body: tooLarge(`request body exceeds ${LIMIT} bytes`, path),
      });
    } finally {
      socket.destroy();
    }
  }
});

it('a 413 sent before the body was read closes the connection, and the client still reads it', async () => {
  // Raw: headers claiming 3 MiB, part of the body, then a second request the server must not take as one.
  // Half-open allowed, as a client still sending must be: the server's FIN doesn't end the client's side.
  const socket = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  const errors: string[] = [];
  socket.on('error', (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const answer = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  socket.write(head('/predict', `Content-Length: ${3 << 20}\r\n`));
  socket.write(Buffer.alloc(200 << 10, 32));
  socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
  const text = await answer; // the server's FIN: it closed its side after the 413
  expect(text).toMatch(/^HTTP\/1\.1 413 /);
  expect(text.toLowerCase()).toContain('\r\nconnection: close\r\n');
  expect(text.split('HTTP/1.1').length - 1).toBe(1);
  expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual(tooLarge(`request body exceeds ${LIMIT} bytes`));
  // The server reads on while the client finishes sending (lingering close): no reset, which could have
  // destroyed the answer before a client read it. Then the client closes, and so does the server.
  for (let i = 0; i < 16 && !socket.destroyed; i++) {
    await new Promise((resolve) => socket.write(Buffer.alloc(64 << 10, 32), resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.end();
  await closed;
  expect(errors).toEqual([]);
  // Node's fetch keeps sending its body after the early answer: every one still gets the 413.
  const body = new Uint8Array(3 << 20).fill(32);
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect([i, r.status, r.headers.get('connection'), await r.json()]).toEqual([
      i,
      413,
      'close',
      tooLarge(`request body exceeds ${LIMIT} bytes`),
    ]);
  }
});

it('a body one byte over the limit gets the bounded reader’s 413, with its size', async () => {
  for (const path of ROUTES) {
    const answer = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: ' '.repeat(LIMIT + 1),
    });
    expect(answer.status, path).toBe(413);
    expect(await answer.json(), path).toEqual(
      tooLarge(`request body is ${LIMIT + 1} bytes; the limit is ${LIMIT}`, path),
    );
  }
});

it('JSON bodies are read whatever their content type says (curl sends form-urlencoded), and refused in our words', async () => {
  const post = async (path: string, body: string, type?: string) => {
    const answer = await fetch(`${server.url}${path}`, {
      method: 'POST',
      body,
      ...(type ? { headers: { 'content-type': type } } : {}),
    });
    return { status: answer.status, body: (await answer.json()) as unknown };
  };
  const image = { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) };
  for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
    expect(await post('/v2/models/tiny/infer', JSON.stringify({ inputs: [image] }), type)).toMatchObject({
      status: 200,
    });
    expect(await post('/v2/repository/index', '{"ready":true}', type)).toMatchObject({ status: 200 });
    expect(await post('/v2/repository/index', '{"ready":1}', type)).toEqual({
      status: 400,
      body: refusalBody('/v2', 'invalid_request', 'ready must be true or false'),
    });
    expect(await post('/v2/repository/models/tiny/unload', '{"parameters":{"x":1}}', type)).toEqual({
      status: 400,
      body: refusalBody('/v2', 'unsupported_parameter', "unload takes no parameters here but 'unload_dependents'"),
    });
    expect(await post('/v2/models/tiny/infer', '{}', type)).toEqual({
      status: 400,
      body: refusalBody('/v2', 'invalid_request', 'inputs: Invalid input: expected array, received undefined'),
    });
    // /predict picks its reader by content type, and names the ones it takes.
    expect(await post('/predict', '{}', type)).toMatchObject({
      status: 415,
      body: { error: { code: 'unsupported_media_type' } },
    });
  }
});
