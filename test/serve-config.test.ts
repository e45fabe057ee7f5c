/**
 * `serve` honours a model's config.pbtxt as Triton does: max_batch_size bounds the batches it forms,
 * version_policy picks the versions it serves; a config it can't read is reported once and the model is
 * still served with the defaults.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { oddModel } from '../testkit/odd-models.ts';

let server: RunningServer;
const logs: string[] = [];

const CONFIG = (maxBatch: number, policy: string) => `
name: "NAME"
platform: "onnxruntime_onnx"
max_batch_size: ${maxBatch}
input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
dynamic_batching { max_queue_delay_microseconds: 20000 }
version_policy: ${policy}
`;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-'));
  for (const [name, maxBatch, policy] of [
    ['small', 4, '{ all { } }'],
    ['newest', 64, '{ latest { num_versions: 1 } }'],
    ['pinned', 64, '{ specific { versions: [ 1 ] } }'],
  ] as const) {
    for (const v of [1, 2]) {
      mkdirSync(join(root, name, String(v)), { recursive: true });
      writeFileSync(join(root, name, String(v), 'model.onnx'), oddModel({ metadata: { normalization: 'folded' } }));
    }
    writeFileSync(join(root, name, 'config.pbtxt'), CONFIG(maxBatch, policy).replace('NAME', name));
  }
  // Triton's max_batch_size 0: full dims, the first one free — each request is handed over whole.
  mkdirSync(join(root, 'whole', '1'), { recursive: true });
  writeFileSync(join(root, 'whole', '1', 'model.onnx'), oddModel({ metadata: { normalization: 'folded' } }));
  writeFileSync(
    join(root, 'whole', 'config.pbtxt'),
    'max_batch_size: 0\ninput [ { name: "input" data_type: TYPE_FP32 dims: [ -1, 1, 28, 28 ] } ]\n' +
      'output [ { name: "logits" data_type: TYPE_FP32 dims: [ -1, 10 ] } ]\nversion_policy: { all { } }\n',
  );
  mkdirSync(join(root, 'broken', '1'), { recursive: true });
  writeFileSync(join(root, 'broken', '1', 'model.onnx'), oddModel());
  writeFileSync(join(root, 'broken', 'config.pbtxt'), 'max_batch_size: "many"\nnot_a_field: 1\n');
  server = await startServer({ models: root, port: 0, watchIntervalMs: 50, log: (l) => logs.push(l) });
});
afterAll(async () => {
  await server?.close();
});

const versions = async (name: string) => {
  const list = (await (await fetch(`${server.url}/api/models`)).json()) as {
    name: string;
    versions: { version: number }[];
  }[];
  return list.find((m) => m.name === name)?.versions.map((v) => v.version);
};

it('serves the versions the version policy names', async () => {
  expect(await versions('small')).toEqual([1, 2]);
  expect(await versions('newest')).toEqual([2]);
  expect(await versions('pinned')).toEqual([1]);
});

it('forms batches no larger than max_batch_size', async () => {
  const image = Array.from({ length: 784 }, (_, i) => (i % 7) / 7);
  const answers = await Promise.all(
    Array.from({ length: 40 }, () =>
      fetch(`${server.url}/predict/small`, {
        method: 'POST',
        body: JSON.stringify({ pixels: image }),
        headers: { 'content-type': 'application/json' },
      }),
    ),
  );
  expect(answers.map((r) => r.status)).toEqual(new Array(40).fill(200));
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const count = Number(/inference_batch_size_count\{model="small"\} (\d+)/.exec(metrics)?.[1]);
  const upTo4 = Number(/inference_batch_size_bucket\{le="4",model="small"\} (\d+)/.exec(metrics)?.[1]);
  expect(count).toBeGreaterThanOrEqual(10); // 40 images, at most 4 per run
  expect(upTo4).toBe(count);
});

it('reports a config it cannot read once, and serves the model with the defaults', async () => {
  expect(await versions('broken')).toEqual([1]);
  await new Promise((r) => setTimeout(r, 300));
  expect(logs.filter((l) => l.includes('broken/config.pbtxt'))).toHaveLength(1);
});

it('a config of max_batch_size 0 and a free first dim takes a request of any batch whole, and says so as written', async () => {
  // Before: read as max_batch_size 1 — a [3, 1, 28, 28] request refused batch_too_large, and /config showed
  // max_batch_size 1, per-image dims and a dynamic_batching the file does not have (an outside attack).
  const config = (await (await fetch(`${server.url}/v2/models/whole/config`)).json()) as Record<string, unknown>;
  expect(config).toMatchObject({ max_batch_size: 0, input: [{ dims: [-1, 1, 28, 28] }] });
  expect(config.dynamic_batching).toBeUndefined();
  const image = (k: number) => Array.from({ length: 784 }, (_, i) => ((i + k) % 7) / 7);
  const infer = async (count: number) =>
    fetch(`${server.url}/v2/models/whole/infer`, {
      method: 'POST',
      body: JSON.stringify({
        inputs: [
          {
            name: 'input',
            shape: [count, 1, 28, 28],
            datatype: 'FP32',
            data: Array.from({ length: count }, (_, k) => image(k)).flat(),
          },
        ],
      }),
      headers: { 'content-type': 'application/json' },
    });
  const three = await infer(3);
  expect(three.status).toBe(200);
  const body = (await three.json()) as { outputs: { shape: number[]; data: number[] }[] };
  expect(body.outputs[0]?.shape).toEqual([3, 10]);
  // Row by row the same as three requests of one image each.
  const singles = await Promise.all(
    [0, 1, 2].map(async (k) => {
      const r = await fetch(`${server.url}/v2/models/whole/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: image(k) }] }),
        headers: { 'content-type': 'application/json' },
      });
      return ((await r.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data ?? [];
    }),
  );
  for (const [k, row] of singles.entries())
    for (const [j, v] of row.entries()) expect(body.outputs[0]?.data[k * 10 + j]).toBeCloseTo(v, 5);
});
