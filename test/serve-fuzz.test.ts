/**
 * Hostile input is normal input: hundreds of generated malformed requests across every POST route —
 * image bombs and lying headers, prototype keys, deep nesting, truncated images, multipart edge cases,
 * wrong v2 tensors, traversal in names and versions — each must get a 4xx JSON error (no stack trace, no
 * file path), promptly, with the server alive and its memory bounded.
 */
import { connect } from 'node:net';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Rng } from '../core/random.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { deepArray, deepObject, gifHeader, hostilePngs, jpegHeader, PROTOTYPE_KEYS } from './helpers/hostile.ts';
import { makeModelRepository } from './helpers/model-repo.ts';
import { refusalOf } from './helpers/refusal.ts';

let server: RunningServer;
let root: string;

beforeAll(async () => {
  const repo = await makeModelRepository();
  root = repo.root;
  server = await startServer({ models: repo.root, port: 0, watchIntervalMs: 60_000 });
}, 120_000);
afterAll(async () => {
  await server?.close();
});

interface Case {
  what: string;
  path: string;
  body: BodyInit;
  type?: string;
  headers?: Record<string, string>;
}

const MODEL_PATHS = ['/predict', '/predict/cnn', '/predict/cnn/1', '/predict/torchcnn'];
const V2_PATHS = ['/v2/models/cnn/infer', '/v2/models/cnn/versions/1/infer', '/v2/models/torchcnn/infer'];

function validPng(): Uint8Array {
  const image = new PNG({ width: 40, height: 40 });
  image.data.fill(255);
  for (let y = 10; y < 30; y++)
    for (let x = 18; x < 22; x++) image.data.fill(0, (y * 40 + x) * 4, (y * 40 + x) * 4 + 3);
  return new Uint8Array(PNG.sync.write(image));
}

function cases(): Case[] {
  const rng = new Rng(7);
  const out: Case[] = [];
  const good = Array.from({ length: 784 }, () => 0.5);
  const json = (what: string, path: string, body: string) => out.push({ what, path, body, type: 'application/json' });
  const image = (what: string, path: string, body: Uint8Array, type = 'image/png') =>
    out.push({ what, path, body: new Uint8Array(body), type });

  for (const path of MODEL_PATHS) {
    for (const [what, bytes] of hostilePngs()) image(`png: ${what}`, path, bytes);
    image('jpeg claiming 20000x20000', path, jpegHeader(20_000, 20_000), 'image/jpeg');
    image('jpeg claiming 2000x2000, no data', path, jpegHeader(2000, 2000), 'image/jpeg');
    image('gif claiming 65535x65535', path, gifHeader(), 'image/gif');
    image(
      'webp with no data',
      path,
      new Uint8Array(Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1')),
      'image/webp',
    );
    image('empty image body', path, new Uint8Array(0));
    const valid = validPng();
    for (let i = 0; i < 6; i++) {
      // Cut before the end of the image data (a PNG cut only in its IEND chunk is still a whole image).
      const cut = Math.floor(rng.next() * (valid.length - 24)) + 8;
      image(`png truncated at ${cut}`, path, valid.subarray(0, cut));
    }
    const noise = Uint8Array.from({ length: 400 }, () => Math.floor(rng.next() * 256));
    noise.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    image('random bytes behind a PNG signature', path, noise);
    image(
      'PNG sent as image/jpeg, blank',
      path,
      (() => {
        const blank = new PNG({ width: 30, height: 30 });
        blank.data.fill(255);
        return new Uint8Array(PNG.sync.write(blank));
      })(),
      'image/jpeg',
    );
    for (const key of PROTOTYPE_KEYS) {
      json(`prototype key ${key}`, path, `{"${key}":1}`);
      json(
        `prototype key ${key} beside pixels`,
        path,
        JSON.stringify({ [key]: {}, pixels: good }).replace('"pixels"', `"${key}2"`),
      );
    }
    json('pixels nested 50,000 deep', path, `{"pixels":${deepArray(50_000)}}`);
    json('inputs nested 50,000 deep', path, `{"inputs":${deepArray(50_000)}}`);
    json('object nested 50,000 deep', path, deepObject(50_000));
    json('array nested 50,000 deep', path, deepArray(50_000));
    json('pixels of objects', path, JSON.stringify({ pixels: good.map(() => ({})) }));
    json('image as a number', path, '{"image": 5}');
    json(
      'image: data URL of garbage',
      path,
      JSON.stringify({ image: `data:image/png;base64,${Buffer.from('x'.repeat(100)).toString('base64')}` }),
    );
    json(
      'image: bomb in base64',
      path,
      JSON.stringify({ image: Buffer.from(hostilePngs()[0]?.[1] as Uint8Array).toString('base64') }),
    );
    json('invalid UTF-8', path, '{"pixels": "\udc00"}');
    out.push({
      what: 'lone surrogate bytes',
      path,
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      type: 'application/json',
    });
    json('empty JSON body', path, '');
    json('JSON string', path, '"pixels"');
    out.push({
      what: 'octet-stream of 3135 bytes',
      path,
      body: new Uint8Array(3135),
      type: 'application/octet-stream',
    });
    out.push({
      what: 'octet-stream with Infinity',
      path,
      body: new Uint8Array(new Float32Array(784).fill(Number.POSITIVE_INFINITY).buffer),
      type: 'application/octet-stream',
    });
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'image/svg+xml', '']) {
      out.push({ what: `content type '${type}'`, path, body: 'pixels=1', type });
    }
    // Multipart edge cases.
    const part = (headers: string, body: string) => `--B\r\n${headers}\r\n\r\n${body}\r\n`;
    const multipart = (what: string, body: string, type = 'multipart/form-data; boundary=B') =>
      out.push({ what: `multipart: ${what}`, path, body, type });
    multipart('no boundary parameter', part('Content-Disposition: form-data; name="file"', 'x'), 'multipart/form-data');
    multipart('wrong boundary', part('Content-Disposition: form-data; name="file"', 'x').replaceAll('--B', '--C'));
    multipart('no file field', `${part('Content-Disposition: form-data; name="other"', 'x')}--B--\r\n`);
    multipart('file as a text field', `${part('Content-Disposition: form-data; name="file"', 'just text')}--B--\r\n`);
    multipart(
      'file that is not an image',
      `${part('Content-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png', 'GIF8 nope')}--B--\r\n`,
    );
    multipart('only the closing boundary', '--B--\r\n');
    multipart('unterminated', part('Content-Disposition: form-data; name="file"; filename="a.png"', 'abc'));
    multipart(
      'huge header line',
      `${part(`Content-Disposition: form-data; name="${'f'.repeat(100_000)}"`, 'x')}--B--\r\n`,
    );
    // Cross-origin posts (a page on another site) are refused.
    out.push({
      what: 'cross-origin multipart from a web page',
      path,
      body: `${part('Content-Disposition: form-data; name="file"; filename="a.png"', 'x')}--B--\r\n`,
      type: 'multipart/form-data; boundary=B',
      headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    });
  }

  const tensor = (fields: Record<string, unknown>) => ({
    name: 'input',
    shape: [1, 1, 28, 28],
    datatype: 'FP32',
    data: good,
    ...fields,
  });
  for (const path of V2_PATHS) {
    const v2 = (what: string, body: unknown) =>
      json(`v2: ${what}`, path, typeof body === 'string' ? body : JSON.stringify(body));
    v2('no inputs', { inputs: [] });
    v2('17 inputs', { inputs: Array.from({ length: 17 }, () => tensor({})) });
    v2('two inputs', { inputs: [tensor({}), tensor({ name: 'other' })] });
    v2('wrong input name', { inputs: [tensor({ name: 'x' })] });
    for (const datatype of ['FP64', 'INT64', 'BYTES', 'BOOL', 'fp32', ''])
      v2(`datatype ${datatype}`, { inputs: [tensor({ datatype })] });
    for (const shape of [
      [1, 784],
      [784],
      [1, 1, 28],
      [0, 1, 28, 28],
      [-1, 1, 28, 28],
      [2, 1, 28, 28],
      [1e9, 1, 28, 28],
      [1, 1, 28, 28, 1],
      [1.5, 1, 28, 28],
    ])
      v2(`shape ${JSON.stringify(shape)}`, { inputs: [tensor({ shape })] });
    v2('data of strings', { inputs: [tensor({ data: good.map(() => 'x') })] });
    v2('data of objects', { inputs: [tensor({ data: good.map(() => ({})) })] });
    v2('data nested too deep', { inputs: [tensor({ data: [[[[[[good]]]]]] })] });
    v2(
      'data nested 50,000 deep',
      `{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":${deepArray(50_000)}}]}`,
    );
    v2('data too short', { inputs: [tensor({ data: good.slice(1) })] });
    v2('data too long', { inputs: [tensor({ data: [...good, 1] })] });
    v2('data is a string', { inputs: [tensor({ data: 'x' })] });
    v2('unknown output', { inputs: [tensor({})], outputs: [{ name: 'secret' }] });
    v2('id not a string', { id: 5, inputs: [tensor({})] });
    for (const key of PROTOTYPE_KEYS) v2(`prototype key ${key}`, `{"${key}":1}`);
    v2('not JSON', 'inputs=1');
    v2('array body', '[1,2,3]');
    out.push({
      what: 'v2: 12 MiB body',
      path,
      body: `{"inputs":[{"data":[${'0,'.repeat(6_000_000)}0]}]}`,
      type: 'application/json',
    });
  }

  // Traversal and odd names/versions in paths.
  const good1 = JSON.stringify({ pixels: good });
  for (const path of [
    '/predict/..%2f..%2fetc',
    '/predict/%2e%2e/1',
    '/predict/cnn/..%2F1',
    '/predict/cnn/0',
    '/predict/cnn/-1',
    '/predict/cnn/1e3',
    '/predict/cnn/99999999999',
    '/predict/cnn/%00',
    '/predict/%00',
    '/predict/CNN',
    '/predict/__proto__',
    '/predict/constructor/1',
    '/predict/cnn/1/extra',
    `/predict/${'a'.repeat(5000)}`,
    '/v2/models/..%2f..%2fetc/infer',
    '/v2/models/__proto__/infer',
    '/v2/models/cnn/versions/0/infer',
    '/v2/models/cnn/versions/abc/infer',
    '/predict/%0d%0aFAKE%20LOG%20LINE',
  ])
    json(`path ${path.slice(0, 40)}`, path, good1);
  return out;
}

it('answers 426 malformed requests on every POST route with 4xx JSON, promptly, and stays up with bounded memory', async () => {
  const all = cases();
  expect(all).toHaveLength(426); // the count README and docs/reliability.md quote (the cases are seeded)
  const rssBefore = process.memoryUsage().rss;
  let worstMs = 0;
  let worst = '';
  const statuses = new Map<number, number>();
  for (const c of all) {
    const start = performance.now();
    const response = await fetch(`${server.url}${c.path}`, {
      method: 'POST',
      body: c.body,
      headers: { ...(c.type !== undefined ? { 'content-type': c.type } : {}), ...c.headers },
    });
    const text = await response.text();
    const ms = performance.now() - start;
    if (ms > worstMs) [worstMs, worst] = [ms, c.what];
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const what = `${c.what} → ${response.status} ${text.slice(0, 200)}`;
    expect(response.status, what).toBeGreaterThanOrEqual(400);
    expect(response.status, what).toBeLessThan(500);
    expect(refusalOf(JSON.parse(text), c.path.split('?')[0] as string).code, what).toMatch(/^[a-z0-9_]+$/);
    expect(text, what).not.toContain(root);
    expect(text, what).not.toMatch(/\n\s+at |node_modules|\/work\/|\/tmp\//);
    // A hang detector, not a performance assertion: every refusal comes back well within the request timeout.
    expect(ms, what).toBeLessThan(15_000);
  }
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  console.log(
    `fuzz: ${all.length} malformed requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, slowest ${worstMs.toFixed(0)} ms (${worst}), RSS +${rssGrowthMb.toFixed(0)} MiB`,
  );
  expect(rssGrowthMb).toBeLessThan(512);
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  const ok = await fetch(`${server.url}/predict/cnn`, {
    method: 'POST',
    body: JSON.stringify({ pixels: Array.from({ length: 784 }, () => 0) }),
    headers: { 'content-type': 'application/json' },
  });
  expect(ok.status).toBe(200);
}, 240_000);

it('counts clients that hang up mid-upload as client aborts (499), not 500s, and escapes control characters in its log', async () => {
  const logs: string[] = [];
  const logged = await startServer({
    models: root,
    port: 0,
    watchIntervalMs: 60_000,
    requestLog: true,
    log: (l) => logs.push(l),
  });
  try {
    const { port } = new URL(logged.url);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(
            'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 500000\r\n\r\n',
          );
          socket.write(Buffer.alloc(20_000, 7), () => {
            socket.destroy();
            resolve();
          });
        });
        socket.on('error', () => resolve());
      });
    }
    await fetch(`${logged.url}/predict/%0d%0aGET%20/forged%20200%200.1ms`, { method: 'POST', body: '{}' });
    await new Promise((r) => setTimeout(r, 300));
    const metrics = await (await fetch(`${logged.url}/metrics`)).text();
    expect(metrics).not.toMatch(/status="5\d\d"/);
    expect(metrics).toMatch(/http_requests_total\{route="\/predict",method="POST",status="499"\} [1-9]/);
    expect(logs.some((l) => /internal error|\n|\r/.test(l))).toBe(false);
    expect(logs.filter((l) => l.startsWith('GET /forged'))).toHaveLength(0);
  } finally {
    await logged.close();
  }
});
