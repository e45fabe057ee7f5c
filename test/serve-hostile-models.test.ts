/**
 * Model files that misbehave only at some batch sizes or for some inputs, run forever, or reach for
 * files outside their folder: the server keeps answering health and the other models, never lets answers
 * cross between clients, never answers 500 or null, and never reads outside a model's version folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRunner } from '../serve/runner/model-runner.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { externalDataModel, externalDataTwice, hostileModel } from '../testkit/hostile-models.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { startServeProcess } from '../testkit/serve-process.ts';
import { sharedWebDemo } from '../testkit/web-demo-build.ts';
import { refusalFrom } from './helpers/refusal.ts';

let server: RunningServer;
let root: string;
const logs: string[] = [];
const RUN_BUDGET_MS = 800;

const put = (name: string, bytes: Uint8Array, files: Record<string, Uint8Array | string> = {}) => {
  mkdirSync(join(root, name, '1'), { recursive: true });
  writeFileSync(join(root, name, '1', 'model.onnx'), bytes);
  for (const [file, data] of Object.entries(files)) writeFileSync(join(root, name, '1', file), data);
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'models-hostile-'));
  const folded = { normalization: 'folded (test)' };
  put('good', oddModel({ metadata: folded }));
  put('small', oddModel({ metadata: folded }));
  writeFileSync(join(root, 'small', 'config.pbtxt'), 'max_batch_size: 4\n');
  for (const twist of [
    'mix-from-3',
    'drop-row-from-3',
    'drop-row-when-triggered',
    'slow-when-triggered',
    'slow-always',
    'infinite-when-triggered',
  ] as const)
    put(twist, hostileModel(twist));
  put('wide-output', hostileModel('wide-output', 100_000));
  put('huge-batch', oddModel({ metadata: folded }));
  put('long-name', oddModel({ inputName: 'i'.repeat(300_000) }));
  put('many-outputs', oddModel({ extraOutputs: 20 }));
  // 40 metadata entries, one of 2 MB, the input contract's key last.
  const chatty: Record<string, string> = Object.fromEntries(Array.from({ length: 38 }, (_, i) => [`k${i}`, 'v']));
  put(
    'chatty',
    oddModel({ metadata: { big: 'x'.repeat(2_000_000), ['k'.repeat(100)]: 'long key', ...chatty, ...folded } }),
  );
  writeFileSync(join(root, 'huge-batch', 'config.pbtxt'), 'max_batch_size: 500000\n');
  const inside = externalDataModel('w.bin');
  put('external', inside.model, { 'w.bin': inside.weights });
  // Names that ORT would resolve against the server's working directory, or outside the folder.
  put('external-cwd', externalDataModel('package.json').model);
  put('external-up', externalDataModel('../../w.bin').model);
  put('external-twice', externalDataTwice('../../w.bin'));
  writeFileSync(join(root, 'w.bin'), inside.weights);
  const linked = externalDataModel('link.bin');
  put('external-link', linked.model);
  symlinkSync(join(root, 'w.bin'), join(root, 'external-link', '1', 'link.bin'));
  server = await startServer({
    models: root,
    port: 0,
    batchDelayMs: 30,
    runBudgetMs: RUN_BUDGET_MS,
    watchIntervalMs: 200,
    log: (l) => logs.push(l),
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const image = (fill = 0, trigger = false) => {
  const data = Array.from({ length: 784 }, (_, i) => ((i * 31 + fill * 97) % 255) / 255);
  if (trigger) data[0] = 2;
  return data;
};
const infer = (model: string, images: number[][], extra: object = {}) =>
  fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [images.length, 1, 28, 28], data: images.flat(), ...extra }],
    }),
  });
const status = async (name: string) => {
  const list = (await (await fetch(`${server.url}/api/models`)).json()) as {
    name: string;
    versions: { version: number; ready: boolean; error?: string }[];
  }[];
  return list.find((m) => m.name === name)?.versions[0];
};
const healthTime = async () => {
  const start = performance.now();
  const response = await fetch(`${server.url}/v2/health/live`);
  expect(response.status).toBe(200);
  return performance.now() - start;
};

describe('models checked at every batch size the server runs', () => {
  it('refuses a model that mixes rows only in batches of 3 or more, or drops a row there', async () => {
    expect(await status('mix-from-3')).toMatchObject({ ready: false, error: expect.stringMatching(/cross/) });
    expect(await status('drop-row-from-3')).toMatchObject({
      ready: false,
      error: expect.stringMatching(/not one row per image|values for/),
    });
    expect(await status('good')).toMatchObject({ ready: true });
  });

  it('a model that drops a row for some inputs: the others in its batch get their own answers, it gets a 503', async () => {
    const alone = await (await infer('drop-row-when-triggered', [image(1)])).json();
    const [a, bad, c] = await Promise.all([
      infer('drop-row-when-triggered', [image(1)]),
      infer('drop-row-when-triggered', [image(2, true)]),
      infer('drop-row-when-triggered', [image(3)]),
    ]);
    expect(a.status).toBe(200);
    expect(c.status).toBe(200);
    expect((await a.json()).outputs[0].data).toEqual(alone.outputs[0].data);
    expect((await c.json()).outputs[0].data).not.toEqual(alone.outputs[0].data);
    expect(bad.status).toBe(503);
    expect((await refusalFrom(bad)).code).toBe('model_failed');
  });
});

describe('sizes', () => {
  it('refuses a max_batch_size over 1024 and outputs wider than 4096 values per image, before they cost memory', async () => {
    expect(await status('huge-batch')).toMatchObject({
      ready: false,
      error: expect.stringMatching(/500000 is over the 1024/),
    });
    expect(await status('wide-output')).toMatchObject({ ready: false, error: expect.stringMatching(/at most 4096/) });
  });

  it("lists a model's metadata bounded: 32 entries, values cut at 512 characters, the input contract's key kept", async () => {
    const response = await fetch(`${server.url}/api/models`);
    const list = (await response.json()) as { name: string; versions: { metadata?: Record<string, string> }[] }[];
    const metadata = list.find((m) => m.name === 'chatty')?.versions[0]?.metadata ?? {};
    expect(Object.keys(metadata)).toHaveLength(32);
    expect(metadata.normalization).toBe('folded (test)');
    expect(metadata.big?.length).toBe(512);
    expect(metadata.big?.endsWith('…')).toBe(true);
    expect(Object.keys(metadata).every((key) => key.length <= 64)).toBe(true);
    expect(JSON.stringify(metadata).length).toBeLessThan(20_000);
    // …and the server still reads the contract: raw intensities in, as for 'good'.
    const [a, b] = await Promise.all(['chatty', 'good'].map((m) => infer(m, [image(1)]).then((r) => r.json())));
    expect(a.outputs).toEqual(b.outputs);
  });

  it('refuses a signature whose names, rank or outputs every metadata answer would echo, in a short reason', async () => {
    const long = await status('long-name');
    expect(long?.ready).toBe(false);
    expect(long?.error).toMatch(/is a name of 300000 characters; at most 256/);
    expect(long?.error?.length).toBeLessThan(400);
    const many = await status('many-outputs');
    expect([many?.ready, many?.error]).toEqual([false, expect.stringMatching(/21 outputs; at most 16/)]);
    const metadata = await fetch(`${server.url}/v2/models/long-name`);
    expect((await metadata.text()).length).toBeLessThan(1000);
  });

  it('a runner reads only a regular file, even if model.onnx was swapped for a FIFO after the server read it', async () => {
    const fifo = join(root, 'fifo.onnx');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    await expect(
      ModelRunner.start(fifo, 'x', { device: 'cpu', threads: 1 }, { loadMs: 20_000, runMs: 1000 }),
    ).rejects.toThrow(/FIFO, not a regular file/);
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});

describe('run budgets', () => {
  it("the server's own busy event loop never quarantines a model that answered in time", async () => {
    // A run of ~0.07 s under a 1.5 s budget, while this process (the server's) is blocked for 3 s: the answer
    // arrives in time but is read late, after the budget's timer is due. (A ~0.3 s run, 2500², once took
    // longer than the budget itself in a loaded suite: then 503 was the right answer, and the test wrong.)
    const own = mkdtempSync(join(tmpdir(), 'models-lag-'));
    mkdirSync(join(own, 'moderate', '1'), { recursive: true });
    writeFileSync(join(own, 'moderate', '1', 'model.onnx'), hostileModel('slow-when-triggered', 1500));
    const lagged = await startServer({ models: own, port: 0, runBudgetMs: 1500 });
    try {
      const pending = fetch(`${lagged.url}/v2/models/moderate/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: image(1, true) }],
        }),
      });
      await new Promise((r) => setTimeout(r, 40)); // the run is under way in the runner
      await new Promise((r) => setImmediate(r)); // block from the loop's check phase, as a burst of I/O would
      const until = performance.now() + 3000;
      while (performance.now() < until); // the server's event loop blocked past the run budget
      expect((await pending).status).toBe(200);
      expect(lagged.repository.versions('moderate')[0]?.ready).toBe(true);
    } finally {
      await lagged.close();
    }
  });

  it('a run over budget fails its request, not the server: health and other models answer meanwhile', async () => {
    const slow = infer('slow-when-triggered', [image(1, true)]);
    const during: number[] = [];
    const started = performance.now();
    let settled = false;
    void slow.finally(() => {
      settled = true;
    });
    while (!settled && performance.now() - started < 20_000) {
      during.push(await healthTime());
      expect((await infer('good', [image(4)])).status).toBe(200);
    }
    const response = await slow;
    expect(response.status).toBe(503);
    expect((await refusalFrom(response)).message).toMatch(/run budget/);
    expect(Math.max(...during)).toBeLessThan(2000);
    // Quarantined until its file changes.
    expect(await status('slow-when-triggered')).toMatchObject({
      ready: false,
      error: expect.stringMatching(/quarantined.*run budget/),
    });
    writeFileSync(join(root, 'slow-when-triggered', '1', 'model.onnx'), hostileModel('slow-when-triggered', 4999));
    const deadline = Date.now() + 20_000;
    while (!(await status('slow-when-triggered'))?.ready && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await infer('slow-when-triggered', [image(5)])).status).toBe(200);
  });

  it('a model slow on every run never becomes ready, with the reason', async () => {
    expect(await status('slow-always')).toMatchObject({ ready: false, error: expect.stringMatching(/budget/) });
    expect(logs.join('\n')).toMatch(/not serving slow-always\/1: .*budget/);
  });
});

describe('crashes', () => {
  it('a runner that dies (as ORT crashing on a model would) is noticed at once: the version is quarantined, and the server lives on', async () => {
    const pid = server.repository.get('drop-row-when-triggered').runnerPid as number;
    process.kill(pid, 'SIGSEGV');
    // Noticed without any request (none is in flight): the version turns not-ready by itself. A fixed 200 ms
    // sleep here failed under a loaded suite (the exit event came later; meanwhile an infer answered 503).
    const deadline = Date.now() + 10_000;
    while ((await status('drop-row-when-triggered'))?.ready && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    // Then not served, with the reason.
    const response = await infer('drop-row-when-triggered', [image(1)]);
    expect(response.status).toBe(404);
    expect((await refusalFrom(response)).message).toMatch(/quarantined: the model's runner process exited \(SIGSEGV\)/);
    expect(await status('drop-row-when-triggered')).toMatchObject({
      ready: false,
      error: expect.stringMatching(/quarantined/),
    });
    expect((await infer('good', [image(1)])).status).toBe(200);
    // Back once its file changes.
    writeFileSync(join(root, 'drop-row-when-triggered', '1', 'model.onnx'), hostileModel('drop-row-when-triggered', 2));
    const back = Date.now() + 20_000;
    while (!(await status('drop-row-when-triggered'))?.ready && Date.now() < back)
      await new Promise((r) => setTimeout(r, 100));
    expect((await infer('drop-row-when-triggered', [image(1)])).status).toBe(200);
  });
});

describe('numbers', () => {
  it('refuses v2 inputs outside float32 (400) and answers a non-finite output with a counted 422, never null', async () => {
    for (const value of [1e39, -3.5e38]) {
      const data = image(1);
      data[5] = value;
      const response = await infer('good', [data]);
      expect(response.status).toBe(400);
      expect((await refusalFrom(response)).message).toMatch(/float32/);
    }
    const inf = await infer('infinite-when-triggered', [image(1, true)]);
    expect(inf.status).toBe(422);
    expect((await refusalFrom(inf)).code).toBe('non_finite_output');
    expect((await infer('infinite-when-triggered', [image(1)])).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^model_nonfinite_outputs_total 1$/m);
  });

  it("refuses a v2 request larger than the model's max_batch_size, naming it", async () => {
    const response = await infer(
      'small',
      Array.from({ length: 5 }, (_, i) => image(i)),
    );
    expect(response.status).toBe(400);
    expect((await refusalFrom(response)).message).toMatch(/at most 4 images/);
    expect(
      (
        await infer(
          'small',
          Array.from({ length: 4 }, (_, i) => image(i)),
        )
      ).status,
    ).toBe(200);
  });
});

describe('external data', () => {
  it('loads weights stored beside model.onnx, and nothing from the working directory or outside the folder', async () => {
    expect(await status('external')).toMatchObject({ ready: true });
    const pixels = image(7);
    const response = await (await infer('external', [pixels])).json();
    const expected = Array.from({ length: 10 }, (_, k) =>
      pixels.reduce((sum, p, i) => sum + p * Math.fround(Math.cos(i * 10 + k) * 0.05), 0),
    );
    for (const [k, value] of (response.outputs[0].data as number[]).entries())
      expect(value).toBeCloseTo(expected[k] as number, 4);
    expect(await status('external-cwd')).toMatchObject({ ready: false, error: expect.stringMatching(/missing/) });
    expect(await status('external-up')).toMatchObject({ ready: false, error: expect.stringMatching(/relative path/) });
    expect(await status('external-link')).toMatchObject({ ready: false, error: expect.stringMatching(/outside/) });
    // data_location written 1 then 5: EXTERNAL to ORT, 5 to protobufjs — refused before either reading counts.
    expect(await status('external-twice')).toMatchObject({
      ready: false,
      error: expect.stringMatching(/written more than once/),
    });
  });
});

describe('a repository of many models', () => {
  it('serves at most --max-loaded-versions versions (each is a process); the rest are not ready, with the reason', async () => {
    const many = mkdtempSync(join(tmpdir(), 'models-many-'));
    for (const name of ['a', 'b', 'c', 'd']) {
      mkdirSync(join(many, name, '1'), { recursive: true });
      writeFileSync(join(many, name, '1', 'model.onnx'), oddModel());
    }
    const small = await startServer({ models: many, port: 0, maxLoadedVersions: 2 });
    try {
      const list = (await (await fetch(`${small.url}/api/models`)).json()) as {
        versions: { ready: boolean; error?: string }[];
      }[];
      const versions = list.flatMap((m) => m.versions);
      expect(versions.filter((v) => v.ready)).toHaveLength(2);
      expect(versions.filter((v) => !v.ready).map((v) => v.error)).toEqual([
        expect.stringMatching(/2 versions are loaded already/),
        expect.stringMatching(/2 versions are loaded already/),
      ]);
    } finally {
      await small.close();
    }
  });
});

describe('a server that dies', () => {
  it('takes its runners with it, even one stuck in an endless run, and leaves nothing in its temporary folder', async () => {
    const own = mkdtempSync(join(tmpdir(), 'models-orphan-'));
    mkdirSync(join(own, 'endless', '1'), { recursive: true });
    writeFileSync(join(own, 'endless', '1', 'model.onnx'), hostileModel('slow-when-triggered', 9000));
    // Its own TMPDIR: a runner's bundle once went to a temporary folder that only a clean exit removed.
    const temporary = mkdtempSync(join(tmpdir(), 'server-tmp-'));
    const web = await sharedWebDemo();
    const { url, child } = await startServeProcess(['--models', own, '--run-budget-ms', '600000', '--web', web], {
      ...process.env,
      TMPDIR: temporary,
    });
    try {
      void fetch(`${url}/v2/models/endless/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: image(1, true) }],
        }),
      }).catch(() => {});
      await new Promise((r) => setTimeout(r, 1000)); // the runner is deep in its product
      const runners = execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n');
      expect(runners.length).toBeGreaterThan(0);
      child.kill('SIGKILL');
      const alive = (pid: string) => {
        try {
          process.kill(Number(pid), 0);
          return true;
        } catch {
          return false;
        }
      };
      // A 9000² product takes ~12 s on an idle core, more under load; the watchdog (a 1 s poll) notices the
      // server gone long before. 6 s: a 3 s deadline failed once in a loaded suite.
      const deadline = Date.now() + 6000;
      while (runners.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(runners.filter(alive)).toEqual([]);
      // (tsx keeps its own cache there.)
      expect(readdirSync(temporary).filter((name) => name.startsWith('model-runner-'))).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      rmSync(temporary, { recursive: true, force: true });
    }
  }, 60_000);
});
