/**
 * --ema: the moving average against the textbook recursion in float64, and the run's plumbing — each epoch
 * evaluates the average, the checkpoint keeps it, a resumed run continues it exactly, export writes it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, INPUT_NAME, LOGITS_NAME, MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import type { Weights } from '../core/model/initialize.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { WeightAverage } from '../core/training/weight-average.ts';
import { exportRun } from '../export/export-run.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { main as trainMain } from '../train/cli/train.ts';
import { trainRun } from '../train/loop.ts';
import { type EpochRecord, readHistory } from '../train/run-dir.ts';
import { failingCli, passingCli } from './helpers/cli.ts';
import { evaluate } from './helpers/reference.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'ema-'));
const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const data = { train: take(train, 960), test: take(test, 400) as Dataset };
/** Rewrites a checkpoint as one from before checkpoints kept the run's settings (a resume then compares none). */
async function withoutKeptSettings(path: string): Promise<void> {
  await saveCheckpoint(path, { ...(await loadCheckpoint(path)), config: undefined });
}

const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TUTORIAL_RECIPE,
  model: 'cnn',
  batchSize: 32,
  lr: 0.05,
  epochs: 2,
  ema: 0.95,
  ...over,
});

describe('WeightAverage', () => {
  it("follows avg ← d·avg + (1 − d)·w with timm's warm-up d = min(decay, (1 + t)/(10 + t)), in float64", () => {
    const rng = new Rng(7);
    const sizes: [string, number][] = [
      ['a', 5],
      ['b', 3],
    ];
    const draw = (): Weights =>
      new Map(sizes.map(([k, n]) => [k, Float32Array.from({ length: n }, () => rng.uniform(-1, 1))]));
    const initial = draw();
    const average = WeightAverage.from(0.9, initial);
    const reference = new Map([...initial].map(([k, v]) => [k, Array.from(v)]));
    for (let t = 0; t < 40; t++) {
      const w = draw();
      average.update(w, t);
      const d = Math.min(0.9, (1 + t) / (10 + t)); // t = 0: 0.1, t = 80: 0.9
      for (const [k, ref] of reference) {
        const next = Array.from(w.get(k) ?? [], (v, i) => d * (ref[i] as number) + (1 - d) * v);
        reference.set(k, next);
      }
    }
    const got = average.weights();
    for (const [k, ref] of reference) {
      const values = Array.from(got.get(k) ?? []);
      expect(values).toHaveLength(ref.length);
      for (const [i, v] of values.entries()) expect(v).toBeCloseTo(ref[i] as number, 5);
    }
    // Copies both ways: neither the start nor a read aliases the averages.
    initial.get('a')?.fill(99);
    got.get('a')?.fill(99);
    expect(average.weights().get('a')?.[0]).not.toBe(99);
  });

  it('refuses a decay outside (0, 1), and weights that do not match the averages', () => {
    for (const decay of [0, 1, -0.5, Number.NaN]) expect(() => WeightAverage.from(decay, new Map())).toThrow(/decay/);
    const average = WeightAverage.from(0.5, new Map([['a', new Float32Array(2)]]));
    expect(() => average.update(new Map([['a', new Float32Array(3)]]), 0)).toThrow(/a/);
  });
});

/** Logits of `weights` for the first n test images, by the float64 reference evaluator (no ORT). */
function referenceLogits(weights: Weights, n: number): Float64Array {
  const { model } = inferenceModel(ZOO.cnn.build(), { weights });
  const x = Float64Array.from(
    data.test.images.subarray(0, n * IMAGE_PIXELS),
    (v) => (v / 255 - MNIST_MEAN) / MNIST_STD,
  );
  return evaluate(model, new Map([[INPUT_NAME, { shape: [n, 1, 28, 28], data: x }]]), LOGITS_NAME).data;
}

const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe('train --ema', () => {
  it('keeps the average in the checkpoint, resumes it exactly, and exports it rather than the last weights', async () => {
    const straight = tmp();
    const logs: string[] = [];
    await trainRun({ config: config({ epochs: 3 }), dir: straight, data, events: { log: (l) => logs.push(l) } });
    const checkpoint = await loadCheckpoint(join(straight, 'checkpoint.bin'));
    const average = checkpoint.average;
    expect(average).toBeDefined();
    // The parameters (no optimizer state), each different from the weights as trained.
    for (const [name, avg] of average ?? []) {
      const trained = checkpoint.trainer.tensors.get(name);
      expect(trained?.length, name).toBe(avg.length);
      expect(maxDifference(avg, trained as Float32Array), name).toBeGreaterThan(0);
    }
    expect(logs.filter((l) => l.includes('as trained:'))).toHaveLength(3);

    // Stopped after epoch 1 and resumed: the same averages to the bit.
    const split = tmp();
    const stop = new AbortController();
    await trainRun({
      config: config({ epochs: 3 }),
      dir: split,
      data,
      signal: stop.signal,
      events: { epochEnd: () => stop.abort() },
    });
    await trainRun({ config: config({ epochs: 3 }), dir: split, data, resume: true });
    const resumed = await loadCheckpoint(join(split, 'checkpoint.bin'));
    for (const [name, avg] of average ?? []) expect(resumed.average?.get(name), name).toEqual(avg);
    const figures = (h: EpochRecord[]) =>
      h.map(({ trainLoss, testLoss, testAccuracy }) => [trainLoss, testLoss, testAccuracy]);
    expect(figures(await readHistory(split))).toEqual(figures(await readHistory(straight)));

    // Export writes the average: its file's logits are the average's (float64 reference), not the last step's.
    const report = await exportRun({ run: straight, out: tmp(), test: data.test });
    expect(report.accuracy).toBe((await readHistory(straight)).at(-1)?.testAccuracy);
    const session = await ort.InferenceSession.create(report.path);
    const n = 50;
    const raw = Float32Array.from(data.test.images.subarray(0, n * IMAGE_PIXELS), (v) => v / 255);
    const exported = (await session.run({ [INPUT_NAME]: new ort.Tensor('float32', raw, [n, 1, 28, 28]) }))[LOGITS_NAME]
      ?.data as Float32Array;
    await session.release();
    expect(maxDifference(exported, referenceLogits(average as Weights, n))).toBeLessThan(1e-4);
    expect(maxDifference(exported, referenceLogits(checkpoint.trainer.tensors, n))).toBeGreaterThan(1e-2);
  });

  it('checkpoints carry the average through encode and decode, and refuse a non-finite one', () => {
    const trainer = { tensors: new Map([['w', Float32Array.of(1, 2)]]), stepCount: 3, rngState: 4 };
    const base = { epoch: 0, trainer, dataRngState: 5, history: [] };
    const decoded = decodeCheckpoint(
      encodeCheckpoint({ ...base, average: new Map([['w', Float32Array.of(0.5, 1.5)]]) }),
    );
    expect(decoded.average?.get('w')).toEqual(Float32Array.of(0.5, 1.5));
    expect([...decoded.trainer.tensors.keys()]).toEqual(['w']);
    expect(decodeCheckpoint(encodeCheckpoint(base)).average).toBeUndefined();
    const bad = encodeCheckpoint({ ...base, average: new Map([['w', Float32Array.of(Number.NaN, 1)]]) });
    expect(() => decodeCheckpoint(bad)).toThrow(/non-finite/);
  });

  it('refuses to resume a run without an average as one with --ema', async () => {
    const dir = tmp();
    await trainRun({ config: config({ epochs: 1, ema: undefined }), dir, data });
    await expect(trainRun({ config: config({ epochs: 2 }), dir, data, resume: true })).rejects.toThrow(
      /ema 0\.95 \(it trained with none\)/,
    );
    // A checkpoint from before the settings were kept in it: the average's own check.
    await withoutKeptSettings(join(dir, 'checkpoint.bin'));
    await expect(trainRun({ config: config({ epochs: 2 }), dir, data, resume: true })).rejects.toThrow(
      /no weight average/,
    );
  });

  it('refuses a checkpoint whose average does not match the model, on resume and on export', async () => {
    const dir = tmp();
    await trainRun({ config: config({ epochs: 1 }), dir, data });
    const path = join(dir, 'checkpoint.bin');
    const checkpoint = await loadCheckpoint(path);
    const [first] = [...(checkpoint.average ?? new Map())].map(([name]) => name);
    for (const edit of [
      (average: Weights) => average.delete(first as string),
      (average: Weights) => average.set(first as string, new Float32Array(3)),
    ]) {
      const average = new Map(checkpoint.average);
      edit(average);
      await saveCheckpoint(path, { ...checkpoint, average });
      await expect(trainRun({ config: config({ epochs: 2 }), dir, data, resume: true })).rejects.toThrow(
        /weight average does not match the model/,
      );
      const failure = await exportRun({ run: dir, out: tmp(), test: data.test }).then(
        () => 'exported',
        (error: Error) => error.message,
      );
      expect(failure).not.toBe('exported');
      expect(failure.split('\n')).toHaveLength(1);
    }
  });

  it('refuses a config.json and a checkpoint that disagree about the average, on resume and on export', async () => {
    const averaged = tmp();
    await trainRun({ config: config({ epochs: 1 }), dir: averaged, data });
    const plain = tmp();
    await trainRun({ config: config({ epochs: 1, ema: undefined }), dir: plain, data });
    // Each run's config.json swapped for the other's view of --ema.
    const configPath = (dir: string) => join(dir, 'config.json');
    for (const [dir, edit] of [
      [averaged, (c: Record<string, unknown>) => delete c.ema],
      [plain, (c: Record<string, unknown>) => Object.assign(c, { ema: 0.9 })],
    ] as const) {
      const json = JSON.parse(readFileSync(configPath(dir), 'utf8'));
      edit(json);
      writeFileSync(configPath(dir), JSON.stringify(json));
      const failure = await exportRun({ run: dir, out: tmp(), test: data.test }).then(
        () => 'exported',
        (error: Error) => error.message,
      );
      expect(failure).toMatch(/--ema .*weight average; export refused/);
    }
    await expect(
      trainRun({ config: config({ epochs: 2, ema: undefined }), dir: averaged, data, resume: true }),
    ).rejects.toThrow(/ema none \(it trained with 0\.95\)/);
    await withoutKeptSettings(join(averaged, 'checkpoint.bin'));
    await expect(
      trainRun({ config: config({ epochs: 2, ema: undefined }), dir: averaged, data, resume: true }),
    ).rejects.toThrow(/keeps a weight average, but config.json has no ema/);
  });

  it('a CLI run with --workers (fast-cnn: one session by default) resumes with workers and --no-autotune as it was: the same average to the bit', async () => {
    const flags = '--model fast-cnn --ema 0.9 --limit 640 --threads 2 --workers --no-autotune'.split(' ');
    const straight = tmp();
    await passingCli(trainMain, ...flags, '--epochs', '2', '--out', straight);
    const split = tmp();
    await passingCli(trainMain, ...flags, '--epochs', '1', '--out', split);
    const recorded = JSON.parse(readFileSync(join(split, 'config.json'), 'utf8'));
    expect([recorded.parallelism, recorded.autotune]).toEqual(['workers', false]);
    await passingCli(trainMain, '--resume', split, '--epochs', '2');
    const [a, b] = await Promise.all([straight, split].map((d) => loadCheckpoint(join(d, 'checkpoint.bin'))));
    for (const [name, avg] of a?.average ?? []) expect(b?.average?.get(name), name).toEqual(avg);
  });

  it('--no-ema trains a recipe that has an average without one: config.json has no ema, the checkpoint no average', async () => {
    const dir = tmp();
    const small = '--model cnn --epochs 1 --limit 128 --validation 64 --no-autotune'.split(' ');
    await passingCli(trainMain, '--recipe', 'best', '--no-ema', ...small, '--out', dir);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).ema).toBeUndefined();
    expect((await loadCheckpoint(join(dir, 'checkpoint.bin')))?.average).toBeUndefined();
    const averaged = tmp();
    await passingCli(trainMain, '--recipe', 'best', ...small, '--out', averaged);
    expect(JSON.parse(readFileSync(join(averaged, 'config.json'), 'utf8')).ema).toBe(0.999);
  });

  it('answers --ema outside (0, 1) with one line', async () => {
    for (const value of ['1', '0', 'x']) {
      const stderr = await failingCli(trainMain, '--ema', value, '--epochs', '1', '--limit', '64', '--out', tmp());
      expect(stderr.split('\n'), value).toHaveLength(1);
      expect(stderr, value).toMatch(/ema/);
    }
  });
});
