/**
 * Triton's statistics extension: requests counted by the version that served them (successes with
 * their images, failures), model runs counted by the batcher (three concurrent requests batched
 * together are one execution of size 3), times cumulative in nanoseconds, in Triton's JSON shape.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { hostileModel } from '../testkit/hostile-models.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { refusalFrom } from './helpers/refusal.ts';

let server: RunningServer;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-stats-'));
  const put = (name: string, bytes: Uint8Array) => {
    mkdirSync(join(root, name, '1'), { recursive: true });
    writeFileSync(join(root, name, '1', 'model.onnx'), bytes);
  };
  put('odd', oddModel({ metadata: { normalization: 'folded (test)' } }));
  put('infinite', hostileModel('infinite-when-triggered'));
  // Long enough that three concurrent requests always meet in one run.
  server = await startServer({ models: root, port: 0, batchDelayMs: 300 });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const image = (trigger = false) => Array.from({ length: 784 }, (_, i) => (trigger && i === 0 ? 2 : (i % 7) / 7));
const infer = (model: string, data: number[], shape = [1, 1, 28, 28]) =>
  fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape, datatype: 'FP32', data }] }),
  });

interface Duration {
  count: number;
  ns: number;
}
interface Stats {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, Duration>;
  batch_stats: { batch_size: number; compute_infer: Duration }[];
}
const stats = async (path: string) => {
  const r = await fetch(`${server.url}${path}`);
  return { status: r.status, body: (await r.json()) as { model_stats: Stats[] } };
};

it('counts requests, images and runs per version in Triton shape', async () => {
  const before = Date.now();
  const fresh = await stats('/v2/models/odd/stats');
  expect(fresh.body.model_stats).toEqual([
    {
      name: 'odd',
      version: '1',
      last_inference: 0,
      inference_count: 0,
      execution_count: 0,
      inference_stats: Object.fromEntries(
        ['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output', 'cache_hit', 'cache_miss'].map(
          (k) => [k, { count: 0, ns: 0 }],
        ),
      ),
      batch_stats: [],
    },
  ]);

  const answers = await Promise.all([infer('odd', image()), infer('odd', image()), infer('odd', image())]);
  expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
  const predict = await fetch(`${server.url}/predict/odd`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [image(), image()] }),
  });
  expect(predict.status).toBe(200);
  expect((await infer('odd', image(), [1, 1, 28, 27])).status).toBe(400);

  const [s] = (await stats('/v2/models/odd/versions/1/stats')).body.model_stats as [Stats];
  expect(s.inference_count).toBe(5); // 3 v2 images + 2 through /predict
  expect(s.execution_count).toBe(2);
  expect(s.batch_stats.map((b) => [b.batch_size, b.compute_infer.count])).toEqual([
    [2, 1],
    [3, 1],
  ]);
  const i = s.inference_stats as Record<string, Duration>;
  expect([i.success?.count, i.fail?.count, i.queue?.count, i.compute_infer?.count]).toEqual([4, 1, 4, 4]);
  // Each waited the batching delay in the queue; the runs took some time; all integers.
  expect(i.queue?.ns).toBeGreaterThan(3 * 200e6);
  expect(i.compute_infer?.ns).toBeGreaterThan(0);
  expect(i.success?.ns).toBeGreaterThanOrEqual((i.queue?.ns ?? 0) + (i.compute_infer?.ns ?? 0));
  for (const d of Object.values(i)) expect(Number.isInteger(d.ns)).toBe(true);
  expect(s.last_inference).toBeGreaterThanOrEqual(before);
  expect(s.last_inference).toBeLessThanOrEqual(Date.now());
});

it('counts a model that answers non-finite values as a failure, and lists every loaded version', async () => {
  expect((await infer('infinite', image(true))).status).toBe(422);
  const all = await stats('/v2/models/stats');
  expect(all.body.model_stats.map((m) => [m.name, m.version])).toEqual([
    ['infinite', '1'],
    ['odd', '1'],
  ]);
  const infinite = all.body.model_stats[0] as Stats;
  expect([infinite.inference_stats.fail?.count, infinite.inference_stats.success?.count]).toEqual([1, 0]);
  expect(infinite.execution_count).toBe(1); // the run happened; its answer was refused
});

it('answers unknown models and versions with 404 JSON, and a malformed version with 400', async () => {
  for (const [path, status] of [
    ['/v2/models/nope/stats', 404],
    ['/v2/models/odd/versions/2/stats', 404],
    ['/v2/models/odd/versions/x/stats', 400],
  ] as const) {
    const r = await fetch(`${server.url}${path}`);
    expect(r.status, path).toBe(status);
    expect((await refusalFrom(r)).code).toBeTruthy();
  }
  const meta = (await (await fetch(`${server.url}/v2`)).json()) as { extensions: string[] };
  expect(meta.extensions).toContain('statistics');
});

it("exposes the same counts under Triton's metric names, labelled only with served models", async () => {
  expect((await infer('made-up-by-a-client', image())).status).toBe(404);
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (metric: string, model: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${metric}{model="${model}",version="1"}`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  const [s] = (await stats('/v2/models/odd/stats')).body.model_stats as [Stats];
  const i = s.inference_stats as Record<string, Duration>;
  const us = (d?: Duration) => Math.round((d?.ns ?? 0) / 1000);
  expect({
    success: value('nv_inference_request_success', 'odd'),
    failure: value('nv_inference_request_failure', 'odd'),
    count: value('nv_inference_count', 'odd'),
    exec: value('nv_inference_exec_count', 'odd'),
    request: value('nv_inference_request_duration_us', 'odd'),
    queue: value('nv_inference_queue_duration_us', 'odd'),
    input: value('nv_inference_compute_input_duration_us', 'odd'),
    infer: value('nv_inference_compute_infer_duration_us', 'odd'),
    output: value('nv_inference_compute_output_duration_us', 'odd'),
    pending: value('nv_inference_pending_request_count', 'odd'),
  }).toEqual({
    success: 4,
    failure: 1,
    count: 5,
    exec: 2,
    request: us(i.success),
    queue: us(i.queue),
    input: us(i.compute_input),
    infer: us(i.compute_infer),
    output: us(i.compute_output),
    pending: 0,
  });
  expect(value('nv_inference_request_failure', 'infinite')).toBe(1);
  expect(text).toContain('# TYPE nv_inference_count counter');
  expect(text).toContain('# TYPE nv_inference_pending_request_count gauge');
  expect(text).not.toContain('made-up-by-a-client');
  // A request waiting out the batching delay is pending.
  const waiting = infer('odd', image());
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(await (await fetch(`${server.url}/metrics`)).text()).toContain(
    'nv_inference_pending_request_count{model="odd",version="1"} 1',
  );
  expect((await waiting).status).toBe(200);
});
