/**
 * Requests Node's HTTP parser refuses before the app runs get the same JSON errors as every other
 * refusal, with the right status and `Connection: close`: a malformed request line or header (400),
 * headers over Node's limit (431), a request too slow to arrive (408), an `Expect` other than
 * 100-continue (417). Sent over raw sockets, as a hostile client would; the client's bytes are never echoed.
 * And what HTTP lets a client ask for that the server never does: compressed responses.
 */
import { request as httpRequest, maxHeaderSize } from 'node:http';
import { connect } from 'node:net';
import { expect, it } from 'vitest';
import { refusalOf } from './helpers/refusal.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

const server = useTinyServer({ timeouts: { headersMs: 1000, requestMs: 2000 } });

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error?: { code: string; message: string } };
  text: string;
}

/** The path a raw request's request line names ('' when it names none). */
const targetOf = (request: string) => /^[A-Z]+ (\S+) HTTP\//.exec(request)?.[1]?.split('?')[0] ?? '';

/** Send `request` on a fresh socket and read until the server closes it (a reset after the answer is fine). */
const exchange = (request: string) =>
  new Promise<RawAnswer>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: server.port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      let json: RawAnswer['body'] = {};
      try {
        json = JSON.parse(body);
      } catch {} // not JSON: the assertions on the body say so
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: json, text });
    });
    socket.write(request);
  });

it('answers what the parser refuses with JSON, its status and Connection: close, never echoing the request', async () => {
  const cases: [string, string, number, string][] = [
    ['garbage', 'GARBAGE-SECRET\r\n\r\n', 400, 'malformed_request'],
    [
      'a header line without a colon',
      'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nSECRET line\r\n\r\n',
      400,
      'malformed_request',
    ],
    ['a bad HTTP version', 'GET / HTTP/9.SECRET\r\nHost: x\r\n\r\n', 400, 'malformed_request'],
    [
      'headers over the limit',
      `GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: SECRET${'a'.repeat(maxHeaderSize)}\r\n\r\n`,
      431,
      'headers_too_large',
    ],
    [
      'an Expect other than 100-continue',
      'POST /predict HTTP/1.1\r\nHost: x\r\nExpect: SECRET\r\nContent-Length: 0\r\n\r\n',
      417,
      'expectation_failed',
    ],
    ['headers that never finish', 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-SECRET: ', 408, 'request_timeout'],
  ];
  for (const [what, request, status, code] of cases) {
    const answer = await exchange(request);
    // A request line naming a /v2 path is refused in the protocol's shape; headers that never finished name
    // none the server can see (Node keeps the unparsed bytes), so they get ours.
    const path = what === 'headers that never finish' ? '' : targetOf(request);
    expect([what, answer.status, refusalOf(answer.body, path).code]).toEqual([what, status, code]);
    expect(answer.headers['content-type'], what).toBe('application/json');
    expect(answer.headers.connection, what).toBe('close');
    expect(answer.text, what).not.toContain('SECRET');
  }
  // The server is unharmed.
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
});

it('answers a HEAD the parser refuses with the headers alone (a response to HEAD has no content)', async () => {
  // An outside attack saw 431 and 400 refusals of HEAD requests carry their JSON body.
  for (const request of [
    `HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(maxHeaderSize)}\r\n\r\n`,
    'HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n',
  ]) {
    const answer = await exchange(request);
    expect([answer.status, answer.headers.connection]).toEqual([request.includes('X-Big') ? 431 : 400, 'close']);
    expect(answer.text.endsWith('\r\n\r\n'), answer.text.slice(-80)).toBe(true);
  }
});

it("refuses a request line too long for the parser in the protocol's shape when it names a /v2 path", async () => {
  const answer = await exchange(`GET /v2/models/${'m'.repeat(20_000)}/ready HTTP/1.1\r\nHost: x\r\n\r\n`);
  expect(answer.status).toBe(431);
  expect(refusalOf(answer.body, '/v2/models').code).toBe('headers_too_large');
});

it('refuses a transfer coding other than chunked (501), instead of handing the routes a still-coded body', async () => {
  const body = '{"pixels":[]}';
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const answer = await exchange(
    `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunked}`,
  );
  expect([answer.status, answer.body.error?.code]).toEqual([501, 'unsupported_transfer_coding']);
  // Plain chunked is read as before (here: a 400 for the empty image, from the route).
  const plain = await exchange(
    `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`,
  );
  expect(plain.status).toBe(400);
});

it('names the limits it enforces', async () => {
  const big = await exchange(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(maxHeaderSize)}\r\n\r\n`);
  expect(big.body.error?.message).toContain(String(maxHeaderSize));
  const slow = await exchange('GET / HTTP/1.1\r\n');
  expect(slow.body.error?.message).toMatch(/within 1 s .* within 2 s/);
});

it('answers requests the adapter refuses before the app (no or no valid Host, a target that is no path) with JSON', async () => {
  const get = (target: string, host?: string) =>
    `GET ${target} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`;
  const cases: [string, string][] = [
    ['HTTP/1.1 without Host', get('/v2/health/live?SECRET')],
    ['a Host with a space', get('/v2/health/live', 'SECRET b')],
    ['a Host with a bad escape', get('/v2/health/live', '%zzSECRET')],
    ['an unclosed IPv6 Host', get('/v2/health/live', '[::1SECRET')],
    ['a Host with a path', get('/v2/health/live', 'x/SECRET')],
    ['a Host with a huge port', get('/v2/health/live', 'x:99999999')],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nX-SECRET: 1\r\n\r\n'],
    ['an absolute file: target', get('file:///SECRET/passwd', 'x')],
    [
      'a POST with a body and a bad Host',
      'POST /predict HTTP/1.1\r\nHost: %zz\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"SECRET"',
    ],
  ];
  for (const [what, request] of cases) {
    const answer = await exchange(request);
    expect([what, answer.status, refusalOf(answer.body, targetOf(request)).code]).toEqual([what, 400, 'bad_request']);
    expect(answer.headers['content-type'], what).toBe('application/json');
    expect(answer.headers.connection, what).toBe('close');
    expect(answer.text, what).not.toContain('SECRET');
  }
  // HTTP/1.0 needs no Host (the server's own address stands in).
  expect((await exchange('GET /v2/health/live HTTP/1.0\r\n\r\n')).status).toBe(200);
});

it('answers CONNECT with a JSON 405 and closes, within a bound even if the client never does', async () => {
  const answer = await exchange('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
  expect([answer.status, answer.body.error?.code]).toEqual([405, 'method_not_allowed']);
  expect(answer.headers).toMatchObject({ 'content-type': 'application/json', connection: 'close' });
  expect(answer.headers.allow).toContain('GET');
  // A client that keeps its side open (and sends on) is closed by the server after the linger.
  const socket = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  socket.on('error', () => {});
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\ntunnel bytes');
  const timer = setInterval(() => socket.write('more'), 100);
  await closed;
  clearInterval(timer);
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
});

it('Expect: 100-continue: a body over the limit is refused before it is invited; one within it is invited and read', async () => {
  const over = await exchange(
    'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n',
  );
  expect(over.text.startsWith('HTTP/1.1 413')).toBe(true); // no "100 Continue" first
  expect(over.body.error?.code).toBe('payload_too_large');
  // Within the limit: 100 Continue, then the answer to the body sent after it.
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: server.port });
    let text = '';
    let sent = false;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!sent && text.startsWith('HTTP/1.1 100')) {
        sent = true;
        socket.write(JSON.stringify({ pixels: new Array(784).fill(0) }).padEnd(7000, ' '));
      }
    });
    socket.on('close', () => resolve(text));
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 7000\r\nConnection: close\r\n\r\n',
    );
  });
  expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  expect(answer).toContain('"prediction"'); // the body sent after the invitation was read
});

it('never compresses a response, whatever Accept-Encoding asks: answers, errors and the docs alike', async () => {
  const get = (path: string, init: { method?: string; body?: string } = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
      (resolve, reject) => {
        const request = httpRequest(
          {
            host: '127.0.0.1',
            port: server.port,
            path,
            method: init.method ?? 'GET',
            headers: { 'accept-encoding': 'gzip, deflate, br, zstd, *', 'content-type': 'application/json' },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
            );
          },
        );
        request.on('error', reject);
        request.end(init.body);
      },
    );
  const infer = JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: new Array(784).fill(0) }],
  });
  const answers = await Promise.all([
    get('/v2/health/live'),
    get('/v2'),
    get('/v2/models/tiny'),
    get('/openapi.json'),
    get('/metrics'),
    get('/no/such/route'),
    get('/v2/models/tiny/infer', { method: 'POST', body: infer }),
    get('/v2/models/tiny/infer', { method: 'POST', body: '{"inputs": [' }),
  ]);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 404, 200, 400]);
  for (const answer of answers) {
    expect(answer.headers['content-encoding']).toBeUndefined();
    // What came is the plain text itself: JSON (or the Prometheus text format) a client reads as it is.
    const text = answer.body.toString('utf8');
    if (String(answer.headers['content-type']).includes('json')) expect(() => JSON.parse(text)).not.toThrow();
    else expect(text).toMatch(/^# (HELP|TYPE) /m);
  }
});
