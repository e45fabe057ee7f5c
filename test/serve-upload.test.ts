/**
 * Publishing a model over HTTP (serve --allow-upload): Triton's own load API with a file override
 * (`file:<version>/model.onnx` in base64, as Triton's model repository extension documents it) and a
 * plain PUT of the bytes as the next version. Written atomically, never over an existing version, checked
 * by the same contract as the repository (a file that does not load is refused and removed), size-capped,
 * behind the same key rules as load/unload.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { type RunningServer, type ServerOptions, startServer } from '../serve/server.ts';
import { externalDataHiddenIn, HIDING_PLACES, hostileModel } from '../testkit/hostile-models.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { refusalFrom } from './helpers/refusal.ts';

const model = oddModel({ metadata: { normalization: 'folded (test)' } });
const servers: RunningServer[] = [];
const start = async (options: Partial<ServerOptions>) => {
  const root = mkdtempSync(join(tmpdir(), 'models-upload-'));
  mkdirSync(join(root, 'a', '1'), { recursive: true });
  writeFileSync(join(root, 'a', '1', 'model.onnx'), model);
  const server = await startServer({ models: root, port: 0, ...options });
  servers.push(server);
  return { server, root };
};
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const load = (url: string, name: string, parameters: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${url}/v2/repository/models/${name}/load`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ parameters }),
  });
const putModel = (url: string, name: string, bytes: Uint8Array) =>
  fetch(`${url}/api/models/${name}/versions`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from(bytes),
  });
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const errorOf = (r: Response) => refusalFrom(r);
const infer = (url: string, path: string) =>
  fetch(`${url}/v2/models/${path}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: Array.from({ length: 784 }, () => 0.5) },
      ],
    }),
  });

describe('with --allow-upload', () => {
  let url: string;
  let root: string;
  beforeAll(async () => {
    const started = await start({ uploads: { maxBytes: 256 * 1024 } });
    url = started.server.url;
    root = started.root;
  }, 60_000);

  it("Triton's load with a file override publishes a new version that serves at once", async () => {
    const r = await load(url, 'a', { config: '{"max_batch_size": 8}', 'file:2/model.onnx': b64(model) });
    expect(r.status).toBe(200);
    expect((await fetch(`${url}/v2/models/a/versions/2/ready`)).status).toBe(200);
    expect((await infer(url, 'a/versions/2')).status).toBe(200);
    expect(readFileSync(join(root, 'a', '2', 'model.onnx'))).toEqual(Buffer.from(model));
  });

  it('concurrent uploads of one model each get a version of their own, in turn (none a 409)', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => putModel(url, 'together', model)));
    expect(answers.map((r) => r.status)).toEqual(new Array(5).fill(201));
    const versions = await Promise.all(answers.map(async (r) => ((await r.json()) as { version: number }).version));
    expect([...versions].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5]);
    expect(readdirSync(join(root, 'together')).sort()).toEqual(['1', '2', '3', '4', '5']);
  });

  it('past 8 publishes of one model waiting, another is refused as busy (each holds its file)', async () => {
    const { server } = await start({ uploads: { maxBytes: 256 * 1024 } });
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, () => server.repository.publish('queued', undefined, model)),
    );
    expect(settled.map((s) => s.status)).toEqual([...new Array(8).fill('fulfilled'), 'rejected', 'rejected']);
    expect(String((settled[9] as PromiseRejectedResult).reason)).toMatch(
      /8 loads, unloads or publishes under way or waiting; retry/,
    );
    const busy = await putModel(server.url, 'queued', model);
    expect(busy.status).toBe(201); // the queue drained: the next one is taken again
    expect(((await busy.json()) as { version: number }).version).toBe(9);
  });

  it('never writes over an existing version (409), and leaves it as it was', async () => {
    const other = oddModel({ classes: 10, metadata: { normalization: 'folded (other)' } });
    const r = await load(url, 'a', { 'file:1/model.onnx': b64(other) });
    expect(r.status).toBe(409);
    expect((await errorOf(r)).code).toBe('version_exists');
    expect(readFileSync(join(root, 'a', '1', 'model.onnx'))).toEqual(Buffer.from(model));
  });

  it('PUT /api/models/<m>/versions publishes the bytes as the next version', async () => {
    const first = await putModel(url, 'b', model);
    expect(first.status).toBe(201);
    expect(await first.json()).toEqual({ model: 'b', version: 1 });
    const second = await putModel(url, 'b', model);
    expect(await second.json()).toEqual({ model: 'b', version: 2 });
    expect((await infer(url, 'b/versions/2')).status).toBe(200);
  });

  it('refuses files that break the contract, garbage, oversize files and bad names, leaving nothing behind', async () => {
    const crossing = await putModel(url, 'c', hostileModel('mix-from-3'));
    expect(crossing.status).toBe(400);
    expect((await errorOf(crossing)).message).toMatch(/cross between clients/);
    expect(existsSync(join(root, 'c', '1'))).toBe(false);
    const garbage = await putModel(url, 'c', new TextEncoder().encode('not a model at all'));
    expect(garbage.status).toBe(400);
    expect(existsSync(join(root, 'c', '1'))).toBe(false);
    const big = await putModel(url, 'c', new Uint8Array(300 * 1024));
    expect(big.status).toBe(413);
    const bigOverride = await load(url, 'c', { 'file:1/model.onnx': b64(new Uint8Array(300 * 1024)) });
    expect(bigOverride.status).toBe(413);
    for (const name of ['Bad_Name', '..', 'x%2Fy'])
      expect([name, (await putModel(url, name, model)).status]).toEqual([name, name === '..' ? 404 : 400]);
    for (const parameters of <Record<string, string>[]>[
      { 'file:1/weights.bin': 'AAAA' },
      { 'file:1/model.onnx': 'AAAA', 'file:2/model.onnx': 'AAAA' },
      { 'file:1/model.onnx': '!!!' },
      { 'file:0/model.onnx': 'AAAA' },
    ]) {
      const r = await load(url, 'c', parameters);
      expect([JSON.stringify(parameters), r.status]).toEqual([JSON.stringify(parameters), 400]);
    }
  });

  it('refuses external data outside the version folder wherever the tensor hides, in its own words', async () => {
    // Sparse tensors, model-local functions and training graphs: the check walks them (whatever ORT does).
    const locations: [string, RegExp][] = [
      ['/etc/passwd', /must be a relative path inside the model's version folder/],
      ['../../../../../../etc/passwd', /must be a relative path inside the model's version folder/],
      ['missing.bin', /is missing from the model's version folder/],
    ];
    for (const [i, place] of HIDING_PLACES.entries()) {
      const [location, words] = locations[i % locations.length] as [string, RegExp];
      const r = await putModel(url, 'hidden', externalDataHiddenIn(place, location));
      const error = await errorOf(r);
      expect([place, r.status, error.message]).toEqual([place, 400, expect.stringMatching(words)]);
      expect(error.message, place).not.toMatch(/\/etc\/passwd|\/tmp\/|models-upload-/);
    }
    expect(existsSync(join(root, 'hidden'))).toBe(false);
  });
});

describe('edges', () => {
  it('two large uploads at once both land (one is read at a time); the last version number and route words are 400, never 500', async () => {
    const { server } = await start({ uploads: { maxBytes: 256 * 1024 } });
    // A valid model padded to ~200 KB: two of them (in base64) are more than the upload budget holds at once.
    const padded = decodeModel(model);
    padded.doc_string = 'x'.repeat(200_000);
    const big = encodeModel(padded);
    const [first, second] = await Promise.all([
      load(server.url, 'd', { 'file:1/model.onnx': b64(big) }),
      load(server.url, 'e', { 'file:1/model.onnx': b64(big) }),
    ]);
    expect([first.status, second.status]).toEqual([200, 200]);
    // Both read: their own budget is whole again.
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^http_upload_body_budget_bytes 0$/m);
    expect((await load(server.url, 'f', { 'file:999999999/model.onnx': b64(model) })).status).toBe(200);
    const next = await putModel(server.url, 'f', model);
    expect(next.status).toBe(400);
    expect((await errorOf(next)).message).toMatch(/no version number left/);
    expect((await putModel(server.url, 'stats', model)).status).toBe(400);
  }, 60_000);

  it('a load call without a file does not wait behind a stalled upload (uploads are read one at a time)', async () => {
    const { server } = await start({
      uploads: { maxBytes: 256 * 1024 },
      modelControlMode: 'explicit',
      loadModels: ['a'],
    });
    const socket = connect({ host: '127.0.0.1', port: server.port });
    socket.on('error', () => {});
    try {
      socket.write('PUT /api/models/z/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n');
      socket.write(`Content-Length: ${200 * 1024}\r\n\r\n`);
      socket.write(Buffer.alloc(100 * 1024)); // then silence: it holds the upload lock until the request timeout
      await new Promise((resolve) => setTimeout(resolve, 300));
      // It waited for that timeout (30 s) before.
      const loaded = await fetch(`${server.url}/v2/repository/models/a/load`, {
        method: 'POST',
        body: '{}',
        signal: AbortSignal.timeout(10_000),
      }).then(
        (r) => r.status,
        () => 'timed out',
      );
      expect(loaded).toBe(200);
    } finally {
      socket.destroy();
    }
  }, 60_000);

  it('a failed upload to a model the operator unloaded leaves it unloaded (explicit mode); a good one serves it', async () => {
    const { server } = await start({
      uploads: { maxBytes: 256 * 1024 },
      modelControlMode: 'explicit',
      loadModels: ['a'],
    });
    const unload = await fetch(`${server.url}/v2/repository/models/a/unload`, { method: 'POST' });
    expect(unload.status).toBe(200);
    expect((await infer(server.url, 'a')).status).toBe(404);
    const bad = await putModel(server.url, 'a', new TextEncoder().encode('not a model'));
    expect(bad.status).toBe(400);
    // It came back: the failed publish had made 'a' wanted again and its version 1 served.
    expect((await infer(server.url, 'a')).status).toBe(404);
    const good = await putModel(server.url, 'a', model);
    expect(good.status).toBe(201);
    expect((await infer(server.url, 'a')).status).toBe(200);
  }, 60_000);

  it('a file, a dangling link or a link out of the repository where a model or version folder goes: 400, nothing written', async () => {
    const { server, root } = await start({ uploads: { maxBytes: 256 * 1024 } });
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    writeFileSync(join(root, 'afile'), 'not a folder');
    symlinkSync(join(root, 'nowhere'), join(root, 'dangling'));
    symlinkSync(outside, join(root, 'away'));
    mkdirSync(join(root, 'g'));
    writeFileSync(join(root, 'g', '1'), 'not a folder');
    for (const [name, send] of [
      ['afile', () => putModel(server.url, 'afile', model)],
      ['dangling', () => putModel(server.url, 'dangling', model)],
      ['away', () => putModel(server.url, 'away', model)],
      ['afile', () => load(server.url, 'afile', { 'file:1/model.onnx': b64(model) })],
      ['g', () => load(server.url, 'g', { 'file:1/model.onnx': b64(model) })],
    ] as const) {
      const r = await send();
      expect(r.status, name).toBe(400);
      expect((await errorOf(r)).message, name).toMatch(/publish refused/);
    }
    expect(readdirSync(outside)).toEqual([]);
    expect(readFileSync(join(root, 'afile'), 'utf8')).toBe('not a folder');
  });
});

describe('without --allow-upload, and off loopback', () => {
  it('takes no files without --allow-upload (403; no PUT route), and needs the key off loopback', async () => {
    const { server } = await start({});
    const refused = await load(server.url, 'a', { 'file:2/model.onnx': b64(model) });
    expect(refused.status).toBe(403);
    expect((await errorOf(refused)).code).toBe('uploads_off');
    expect((await putModel(server.url, 'b', model)).status).toBe(404);

    const keyed = await start({ host: '0.0.0.0', apiKey: 'sekret', uploads: { maxBytes: 1 << 20 } });
    const local = `http://127.0.0.1:${keyed.server.port}`;
    expect((await putModel(local, 'b', model)).status).toBe(401);
    const ok = await load(local, 'b', { 'file:1/model.onnx': b64(model) }, { authorization: 'Bearer sekret' });
    expect(ok.status).toBe(200);
  }, 60_000);
});
