/**
 * Model control as in Triton: in explicit mode a model is listed in the repository index but not served
 * until loaded, served after, unavailable after unload — while a request already in flight on it still
 * gets its answer. Poll mode refuses load/unload; none mode never rescans. Off loopback, load and unload
 * need the API key (401 without it) and are off without one (403).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, type ServerOptions, startServer } from '../serve/server.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { refusalFrom } from './helpers/refusal.ts';

const model = oddModel({ metadata: { normalization: 'folded (test)' } });
const put = (root: string, name: string) => {
  mkdirSync(join(root, name, '1'), { recursive: true });
  writeFileSync(join(root, name, '1', 'model.onnx'), model);
};
const repo = (...names: string[]) => {
  const root = mkdtempSync(join(tmpdir(), 'models-control-'));
  for (const name of names) put(root, name);
  return root;
};

const servers: RunningServer[] = [];
const start = async (options: ServerOptions) => {
  const server = await startServer({ port: 0, ...options });
  servers.push(server);
  return server;
};
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const image = Array.from({ length: 784 }, (_, i) => (i % 9) / 9);
const infer = (url: string, name: string) =>
  fetch(`${url}/v2/models/${name}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: image }] }),
  });
const post = (url: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const index = async (url: string, body?: unknown) =>
  (await (await post(url, '/v2/repository/index', body)).json()) as {
    name: string;
    version: string;
    state: string;
    reason: string;
  }[];
const errorOf = (r: Response) => refusalFrom(r);

describe('explicit mode', () => {
  let server: RunningServer;
  let root: string;
  beforeAll(async () => {
    root = repo('a', 'b');
    // A long batching delay keeps a request in flight while the test unloads its model.
    server = await start({ models: root, modelControlMode: 'explicit', loadModels: ['a'], batchDelayMs: 500 });
  }, 60_000);

  it('lists every model, serves only those loaded, and loads on request', async () => {
    expect(await index(server.url)).toEqual([
      { name: 'a', version: '1', state: 'READY', reason: '' },
      { name: 'b', version: '1', state: 'UNAVAILABLE', reason: 'unloaded (explicit model control)' },
    ]);
    expect((await index(server.url, { ready: true })).map((e) => e.name)).toEqual(['a']);
    const before = await infer(server.url, 'b');
    expect(before.status).toBe(404);
    expect((await errorOf(before)).message).toContain('not loaded');
    expect((await infer(server.url, 'a')).status).toBe(200);

    const load = await post(server.url, '/v2/repository/models/b/load');
    expect([load.status, await load.json()]).toEqual([200, {}]);
    expect((await index(server.url)).find((e) => e.name === 'b')?.state).toBe('READY');
    expect((await infer(server.url, 'b')).status).toBe(200);
  });

  it('unloads a model while a request on it is in flight: that request is answered, later ones are not', async () => {
    const inFlight = infer(server.url, 'b');
    await new Promise((resolve) => setTimeout(resolve, 150)); // inside the batching delay
    // The body tritonclient's unload_model() sends (its HTTP client, unload_dependents=False by default).
    const unload = await post(server.url, '/v2/repository/models/b/unload', {
      parameters: { unload_dependents: false },
    });
    expect(unload.status).toBe(200);
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data).toHaveLength(10);
    expect((await infer(server.url, 'b')).status).toBe(404);
    // Its ready check says why in the same words as inference (it said "unknown model").
    const ready = await fetch(`${server.url}/v2/models/b/ready`);
    expect(ready.status).toBe(404);
    expect((await errorOf(ready)).message).toContain("model 'b' is not loaded");
    expect((await index(server.url)).find((e) => e.name === 'b')).toMatchObject({ state: 'UNAVAILABLE' });
    expect((await fetch(`${server.url}/v2/models/stats`)).ok).toBe(true);
  });

  it('loads a model added after start (no polling: only when asked)', async () => {
    put(root, 'c');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await infer(server.url, 'c')).status).toBe(404);
    expect((await post(server.url, '/v2/repository/models/c/load')).status).toBe(200);
    expect((await infer(server.url, 'c')).status).toBe(200);
  });

  it('a load of a model whose every version fails answers 400 with the reason, not 404', async () => {
    mkdirSync(join(root, 'allbad', '1'), { recursive: true });
    writeFileSync(join(root, 'allbad', '1', 'model.onnx'), 'not a model');
    const answer = await post(server.url, '/v2/repository/models/allbad/load');
    // A re-check attack got 404 "the repository has no model" once failed versions left the known set.
    expect(answer.status).toBe(400);
    expect((await errorOf(answer)).message).toMatch(/did not load|not an ONNX model/);
  });

  it('a reload whose new file fails answers 400 with why, the version serving what it served; the served bytes back, 200', async () => {
    put(root, 'reloaded');
    expect((await post(server.url, '/v2/repository/models/reloaded/load')).status).toBe(200);
    const path = join(root, 'reloaded', '1', 'model.onnx');
    writeFileSync(path, 'half-copied over the model');
    const failed = await post(server.url, '/v2/repository/models/reloaded/load');
    // Triton: "if the reload fails for any reason the already loaded model will be unchanged and remain loaded",
    // and the response says the load failed (here it was 200, and only the log told).
    expect(failed.status).toBe(400);
    expect((await errorOf(failed)).message).toMatch(/^model 'reloaded' did not reload: version 1: .+still serves\)$/);
    expect((await infer(server.url, 'reloaded')).status).toBe(200);
    writeFileSync(path, model);
    const back = await post(server.url, '/v2/repository/models/reloaded/load');
    expect([back.status, await back.json()]).toEqual([200, {}]);
    expect((await index(server.url)).find((e) => e.name === 'reloaded')).toEqual({
      name: 'reloaded',
      version: '1',
      state: 'READY',
      reason: '',
    });
    const listed = (await (await fetch(`${server.url}/api/models`)).json()) as {
      name: string;
      versions: { version: number; ready: boolean; error?: string }[];
    }[];
    // The failure in between is not listed once the served bytes are back.
    expect(listed.find((m) => m.name === 'reloaded')?.versions).toEqual([
      expect.objectContaining({ version: 1, ready: true }),
    ]);
    expect(listed.find((m) => m.name === 'reloaded')?.versions[0]?.error).toBeUndefined();
  });

  it('a reason that cuts a name through a character answers well-formed JSON: U+FFFD, not a lone surrogate', async () => {
    // An input name of 262 characters, over the limit: the reason shows its first 64, cutting an emoji in half
    // (an outside attack: the answer carried a lone \ud83d escape, which strict JSON parsers refuse).
    const named = oddModel({ inputName: `${'a'.repeat(62)}${'\u{1F600}'.repeat(100)}` });
    mkdirSync(join(root, 'uni', '1'), { recursive: true });
    writeFileSync(join(root, 'uni', '1', 'model.onnx'), named);
    const answer = await post(server.url, '/v2/repository/models/uni/load');
    expect(answer.status).toBe(400);
    const text = await answer.text();
    expect(text).not.toMatch(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i);
    expect(text).toContain('\uFFFD');
    const entry = (await index(server.url)).find((e) => e.name === 'uni');
    expect(entry?.reason).toContain('\uFFFD');
    expect(entry?.reason).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('a load whose version policy names only versions the folder lacks says so, not an older failure', async () => {
    mkdirSync(join(root, 'named', '1'), { recursive: true });
    writeFileSync(join(root, 'named', '1', 'model.onnx'), 'not a model');
    expect((await post(server.url, '/v2/repository/models/named/load')).status).toBe(400); // version 1 fails
    writeFileSync(join(root, 'named', 'config.pbtxt'), 'version_policy: { specific { versions: [9] } }\n');
    const answer = await post(server.url, '/v2/repository/models/named/load');
    expect(answer.status).toBe(400);
    const { message } = await errorOf(answer);
    expect(message).toContain('chooses none of the versions with a model file (1)');
    expect(message).not.toContain('ONNX');
    // That failed load left 'named' unwanted: fixed, it is not served until a load asks for it (another
    // model's load rescans the repository).
    mkdirSync(join(root, 'named', '9'));
    writeFileSync(join(root, 'named', '9', 'model.onnx'), model);
    // Named version present: it loads.
    put(root, 'named2');
    writeFileSync(join(root, 'named2', 'config.pbtxt'), 'version_policy: { specific { versions: [7] } }\n');
    expect((await post(server.url, '/v2/repository/models/named2/load')).status).toBe(400);
    // Listed in the repository index all the same, and a request for it says why it serves nothing.
    expect((await index(server.url)).filter((e) => e.name === 'named2')).toEqual([
      { name: 'named2', version: '', state: 'UNAVAILABLE', reason: expect.stringContaining('chooses none') },
    ]);
    expect((await errorOf(await infer(server.url, 'named2'))).message).toContain('chooses none');
    mkdirSync(join(root, 'named2', '7'));
    writeFileSync(join(root, 'named2', '7', 'model.onnx'), model);
    expect((await post(server.url, '/v2/repository/models/named2/load')).status).toBe(200);
    expect((await infer(server.url, 'named')).status).toBe(404);
    expect((await post(server.url, '/v2/repository/models/named/load')).status).toBe(200);
    expect((await infer(server.url, 'named')).status).toBe(200);
  });

  it('takes concurrent loads and unloads of one model one at a time: each answers 200', async () => {
    put(root, 'd');
    // Racing an unload, a load answered 400 "did not load: no version" for a model that loads fine.
    const order = ['load', 'unload', 'load', 'unload', 'load', 'unload', 'load', 'unload'];
    const answers = await Promise.all(order.map((op) => post(server.url, `/v2/repository/models/d/${op}`)));
    expect(await Promise.all(answers.map(async (r) => [r.status, await r.json()]))).toEqual(order.map(() => [200, {}]));
    // Whichever came last, the index and inference agree on it.
    const state = (await index(server.url)).find((e) => e.name === 'd')?.state;
    expect((await infer(server.url, 'd')).status).toBe(state === 'READY' ? 200 : 404);
  });

  it('answers unknown models, bad bodies and parameters with 4xx JSON', async () => {
    for (const [path, body, status, code] of [
      ['/v2/repository/models/nope/load', undefined, 404, 'model_not_found'],
      ['/v2/repository/models/nope/unload', undefined, 404, 'model_not_found'],
      ['/v2/repository/models/a/load', { parameters: { config: '{}' } }, 400, 'unsupported_parameter'],
      ['/v2/repository/models/a/load', [1], 400, 'invalid_request'],
      ['/v2/repository/index', { ready: 'yes' }, 400, 'invalid_request'],
    ] as const) {
      const r = await post(server.url, path, body);
      expect([path, r.status]).toEqual([path, status]);
      expect((await errorOf(r)).code).toBe(code);
    }
    const broken = await fetch(`${server.url}/v2/repository/index`, { method: 'POST', body: '{' });
    expect(broken.status).toBe(400);
  });
});

describe('poll and none modes', () => {
  it('poll (the default) serves everything and refuses load/unload; none never rescans', async () => {
    const poll = await start({ models: repo('a') });
    const refused = await post(poll.url, '/v2/repository/models/a/unload');
    expect(refused.status).toBe(400);
    expect((await errorOf(refused)).message).toContain('explicit mode');
    expect((await infer(poll.url, 'a')).status).toBe(200);

    await expect(startServer({ models: repo(), port: 0, loadModels: ['a'] })).rejects.toThrow(
      '--load-model needs --model-control-mode explicit',
    );
    const root = repo('a');
    const none = await start({ models: root, modelControlMode: 'none', watchIntervalMs: 100 });
    put(root, 'late');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await index(none.url)).map((e) => e.name)).toEqual(['a']);
    expect((await infer(none.url, 'late')).status).toBe(404);
    expect((await post(none.url, '/v2/repository/models/late/load')).status).toBe(400);
  }, 60_000);
});

describe('off loopback', () => {
  it('refuses load/unload without a configured key (403), and needs the key when one is set (401)', async () => {
    const root = repo('a');
    const open = await start({ models: root, host: '0.0.0.0', modelControlMode: 'explicit' });
    const local = `http://127.0.0.1:${open.port}`;
    const off = await post(local, '/v2/repository/models/a/load');
    expect(off.status).toBe(403);
    expect((await errorOf(off)).message).toContain('--api-key');
    expect((await index(local)).map((e) => e.state)).toEqual(['UNAVAILABLE']); // reading is open

    const keyed = await start({ models: root, host: '0.0.0.0', modelControlMode: 'explicit', apiKey: 'sekret' });
    const url = `http://127.0.0.1:${keyed.port}`;
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'sekret' }] as Record<
      string,
      string
    >[]) {
      const r = await post(url, '/v2/repository/models/a/load', undefined, headers);
      expect(r.status).toBe(401);
      expect((await errorOf(r)).code).toBe('unauthorized');
    }
    expect((await infer(url, 'a')).status).toBe(404);
    const ok = await post(url, '/v2/repository/models/a/load', undefined, { authorization: 'Bearer sekret' });
    expect(ok.status).toBe(200);
    expect((await infer(url, 'a')).status).toBe(200);
  }, 60_000);
});

describe('from a page on another origin (--cors)', () => {
  it('needs the key even on loopback: without one configured, a cross-origin load is 403; with one, 401 unless it is sent', async () => {
    const root = repo('a');
    const open = await start({ models: root, modelControlMode: 'explicit', cors: true });
    const page = { origin: 'http://evil.example' };
    for (const headers of [page, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }]) {
      const refused = await post(open.url, '/v2/repository/models/a/load', undefined, headers);
      expect([refused.status, (await errorOf(refused)).code]).toEqual([403, 'model_control_off']);
    }
    expect((await infer(open.url, 'a')).status).toBe(404);
    // The same request from a client that is no web page (no Origin), and one from the server's own pages.
    expect((await post(open.url, '/v2/repository/models/a/load')).status).toBe(200);
    const own = { origin: open.url };
    expect((await post(open.url, '/v2/repository/models/a/unload', {}, own)).status).toBe(200);

    const keyed = await start({ models: root, modelControlMode: 'explicit', cors: true, apiKey: 'sekret' });
    expect((await post(keyed.url, '/v2/repository/models/a/load', undefined, page)).status).toBe(401);
    const ok = await post(keyed.url, '/v2/repository/models/a/load', undefined, {
      ...page,
      authorization: 'Bearer sekret',
    });
    expect(ok.status).toBe(200);
  }, 60_000);
});
