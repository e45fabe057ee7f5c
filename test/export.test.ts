/** The export and inspect commands: deployable models, validated, in the model repository. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, INPUT_NAME, LOGITS_NAME, MNIST_MEAN, MNIST_STD, NUM_CLASSES } from '../core/contract.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { main as exportMain } from '../export/cli/export.ts';
import { main as inspectMain } from '../export/cli/inspect.ts';
import { exportRun } from '../export/export-run.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { checkModelName, checkVersion } from '../node/repository.ts';
import { decodeModel } from '../onnx/codec.ts';
import { describeModel } from '../onnx/describe.ts';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { trainRun } from '../train/loop.ts';
import { failingCli, passingCli } from './helpers/cli.ts';
import { evaluate } from './helpers/reference.ts';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const data = { train: take(train, 2000), test: take(test, 1000) as Dataset };

async function trainedRun(model: 'cnn' | 'densenet', epochs = 1) {
  const dir = tmp(`run-${model}-`);
  await trainRun({ config: { ...TUTORIAL_RECIPE, model, epochs, lr: 0.05, batchSize: 32 }, dir, data });
  return dir;
}

/** An exported file's output for the first `n` test images, as clients send them (raw [0, 1] pixels). */
async function fileOutput(path: string, n: number, output = LOGITS_NAME): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path);
  try {
    const raw = Float32Array.from(data.test.images.subarray(0, n * IMAGE_PIXELS), (v) => v / 255);
    const feeds = { [INPUT_NAME]: new ort.Tensor('float32', raw, [n, 1, 28, 28]) };
    return (await session.run(feeds))[output]?.data as Float32Array;
  } finally {
    await session.release();
  }
}

/**
 * The independent side: the training-side forward graph (unfolded, normalization outside) on the
 * checkpoint's weights, evaluated in float64 by the reference evaluator — no ORT, no export code.
 */
async function referenceLogits(runDir: string, model: 'cnn' | 'densenet', n: number): Promise<Float64Array> {
  const { trainer } = await loadCheckpoint(join(runDir, 'checkpoint.bin'));
  const { model: plain } = inferenceModel(ZOO[model].build(), { weights: trainer.tensors });
  const x = Float64Array.from(
    data.test.images.subarray(0, n * IMAGE_PIXELS),
    (v) => (v / 255 - MNIST_MEAN) / MNIST_STD,
  );
  return evaluate(plain, new Map([[INPUT_NAME, { shape: [n, 1, 28, 28], data: x }]]), LOGITS_NAME).data;
}

const argmaxes = (rows: ArrayLike<number>) =>
  Array.from({ length: rows.length / NUM_CLASSES }, (_, i) => {
    const row = Array.from({ length: NUM_CLASSES }, (_, k) => rows[i * NUM_CLASSES + k] as number);
    return row.indexOf(Math.max(...row));
  });
const maxAbsDifference = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe('export', () => {
  it('cnn: folds the normalization into conv1, validates against the training graph, and round-trips through inspect', async () => {
    const runDir = await trainedRun('cnn');
    const out = tmp('models-');
    const { stdout } = await passingCli(exportMain, '--run', runDir, '--out', out);
    expect(stdout).toMatch(/wrote .*cnn\/1\/model\.onnx/);
    expect(stdout).toMatch(/0 different predictions/);
    const path = join(out, 'cnn', '1', 'model.onnx');
    const info = describeModel(decodeModel(readFileSync(path)));
    expect(info.inputs).toEqual([{ name: 'input', dataType: 'FLOAT', shape: ['N', 1, 28, 28] }]);
    expect(info.outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
    expect(info.ops).not.toHaveProperty('Sub'); // folded into the weights, not added as nodes
    expect(info.metadata).toMatchObject({
      name: 'cnn',
      version: '1',
      tutorial_section: '9.5',
      epochs: '1',
      labels: '0,1,2,3,4,5,6,7,8,9',
    });
    expect(Number(info.metadata.test_accuracy)).toBeGreaterThan(80);
    const inspected = (await passingCli(inspectMain, path)).stdout;
    expect(inspected).toMatch(/opsets ai\.onnx 17/);
    expect(inspected).toMatch(/^ {2}probabilities: FLOAT \[N, 10\]$/m);
    expect(inspected).toMatch(/^ {2}test_accuracy: \d+\.\d\d$/m);
  }, 60_000);

  it('densenet: BatchNorm folded into conv0, normalization as input nodes (padded first conv), same predictions', async () => {
    const runDir = await trainedRun('densenet');
    const out = tmp('models-');
    const report = await exportRun({ run: runDir, out, test: data.test });
    expect(report.foldedBatchNorms).toBe(1);
    expect(report.normalization).toBe('nodes');
    // Its logits (ORT, raw pixels, folded graph) equal the float64 reference's (unfolded graph, normalized
    // pixels) to float32 precision, and its probabilities are their softmax.
    const n = 16;
    const [logits, probabilities, reference] = [
      await fileOutput(report.path, n),
      await fileOutput(report.path, n, 'probabilities'),
      await referenceLogits(runDir, 'densenet', n),
    ];
    console.log(
      `densenet export vs float64 reference: max |Δlogit| ${maxAbsDifference(logits, reference).toExponential(2)}`,
    );
    expect(maxAbsDifference(logits, reference)).toBeLessThan(1e-4);
    const softmax = Array.from(reference, (v, i) => {
      const row = reference.subarray(i - (i % NUM_CLASSES), i - (i % NUM_CLASSES) + NUM_CLASSES);
      const max = Math.max(...row);
      return Math.exp(v - max) / row.reduce((sum, w) => sum + Math.exp(w - max), 0);
    });
    expect(maxAbsDifference(probabilities, softmax)).toBeLessThan(1e-5);
  }, 120_000);

  it('never overwrites a version without --force, and refuses to export the same checkpoint twice', async () => {
    const runDir = await trainedRun('cnn');
    const out = tmp('models-');
    const first = await exportRun({ run: runDir, out, test: data.test });
    const before = readFileSync(first.path);
    await expect(exportRun({ run: runDir, out, version: 1, test: data.test })).rejects.toThrow(
      /cnn\/1\/model\.onnx exists; choose another --version or pass --force/,
    );
    await expect(exportRun({ run: runDir, out, test: data.test })).rejects.toThrow(
      /^this checkpoint is already exported as .*cnn\/1\/model\.onnx; pass --force to export it again$/,
    );
    expect(readFileSync(first.path).equals(before)).toBe(true);
    expect(existsSync(join(out, 'cnn', '2'))).toBe(false);
    // Asked for explicitly: --force, or a --version of its own (then reported).
    expect((await exportRun({ run: runDir, out, force: true, test: data.test })).version).toBe(2);
    const placed = await exportRun({ run: runDir, out, version: 5, test: data.test });
    expect(placed.alsoExportedAs).toMatch(/cnn\/1\/model\.onnx$/);
    expect((await exportRun({ run: runDir, out, version: 1, force: true, test: data.test })).version).toBe(1);
    // One more epoch is a new checkpoint: it exports as the next version without --force.
    await trainRun({
      config: { ...TUTORIAL_RECIPE, model: 'cnn', epochs: 2, lr: 0.05, batchSize: 32 },
      dir: runDir,
      data,
      resume: true,
    });
    expect((await exportRun({ run: runDir, out, test: data.test })).version).toBe(6);
  }, 120_000);

  it('fp16 and int8 variants: own model names, half and a quarter of the size, predicting as the float32 file does', async () => {
    const runDir = await trainedRun('cnn', 2);
    const out = tmp('models-');
    const fp32 = await exportRun({ run: runDir, out, test: data.test });
    const fp16 = await exportRun({ run: runDir, out, variant: 'fp16', test: data.test });
    const int8 = await exportRun({ run: runDir, out, variant: 'int8', test: data.test });
    // A variant never becomes what /predict/cnn serves.
    expect([fp32, fp16, int8].map((r) => `${r.name}/${r.version}`)).toEqual(['cnn/1', 'cnn-fp16/1', 'cnn-int8/1']);
    const n = data.test.count;
    const fp32Probabilities = await fileOutput(fp32.path, n, 'probabilities');
    const fp32Predictions = argmaxes(fp32Probabilities);
    const bounds = { fp16: { agreement: 0.998, probability: 5e-3 }, int8: { agreement: 0.98, probability: 0.2 } };
    for (const r of [fp16, int8]) {
      const variant = r.variant?.variant ?? 'fp16';
      const info = describeModel(decodeModel(readFileSync(r.path)));
      expect(info.parameterCount).toBe(8_490);
      expect(info.metadata.precision).toMatch(variant === 'fp16' ? /^fp16 weights/ : /^int8 weights/);
      // Judged against the float32 file by metrics the exporter does not compute: top-1 agreement and
      // the largest probability difference over the 1,000 test images.
      const probabilities = await fileOutput(r.path, n, 'probabilities');
      const predictions = argmaxes(probabilities);
      const agreement = predictions.filter((p, i) => p === fp32Predictions[i]).length / n;
      const worst = maxAbsDifference(probabilities, fp32Probabilities);
      console.log(
        `${variant} vs fp32 file: top-1 agreement ${(100 * agreement).toFixed(1)}%, max |Δp| ${worst.toExponential(2)}`,
      );
      expect(agreement, variant).toBeGreaterThanOrEqual(bounds[variant].agreement);
      expect(maxAbsDifference(probabilities, fp32Probabilities), variant).toBeLessThan(bounds[variant].probability);
      // The accuracy it reports is the one its file has on these images.
      const hits = predictions.filter((p, i) => p === data.test.labels[i]).length;
      expect(info.metadata.test_accuracy).toBe(((100 * hits) / n).toFixed(2));
    }
    expect(fp16.bytes / (fp16.variant?.fp32Bytes ?? 1)).toBeLessThan(0.6);
    expect(int8.bytes / (int8.variant?.fp32Bytes ?? 1)).toBeLessThan(0.35);
  }, 120_000);

  it('refuses a variant that loses accuracy, and writes nothing: weights the float32 model shrugs off, fp16 and int8 cannot hold', async () => {
    const runDir = await trainedRun('cnn');
    const path = join(runDir, 'checkpoint.bin');
    const checkpoint = await loadCheckpoint(path);
    // A checkpoint's weight tensor by name (the copies below are edited through it).
    const tensor = (from: typeof checkpoint, name: string) => from.trainer.tensors.get(name) as Float32Array;
    const [conv1w, conv1b, conv2w] = [
      tensor(checkpoint, 'conv1.weight'),
      tensor(checkpoint, 'conv1.bias'),
      tensor(checkpoint, 'conv2.weight'),
    ];
    // fp16: conv1 scaled by 1e-8 and conv2's weights by 1e8. ReLU and max-pooling commute with a positive
    // scale, so float32 computes the same logits; float16 flushes 1e-9-sized weights to zero (its smallest
    // subnormal is 6e-8), and every image gets the same answer.
    const scaled = structuredClone(checkpoint);
    for (const [name, gain] of [
      ['conv1.weight', 1e-8],
      ['conv1.bias', 1e-8],
      ['conv2.weight', 1e8],
    ] as const) {
      const values = tensor(scaled, name);
      values.forEach((v, i) => {
        values[i] = v * gain;
      });
    }
    await saveCheckpoint(path, scaled);
    const out = tmp('models-');
    await expect(exportRun({ run: runDir, out, variant: 'fp16', test: data.test })).rejects.toThrow(
      /validation failed, nothing written: the fp16 variant loses \d+\.\d\d pp of accuracy \(allowed 0\.1\)/,
    );
    expect(existsSync(join(out, 'cnn-fp16'))).toBe(false);
    // int8: conv1's channel 0 dead (weights 0, bias −1: zero after the ReLU on every image), and conv2 reading
    // it with weights 1000× its largest. Float32 never sees them; per-channel int8 scales every conv2 channel
    // to them, so its real weights all round to zero.
    const dead = structuredClone(checkpoint);
    const kernel1 = conv1w.length / conv1b.length;
    tensor(dead, 'conv1.weight').fill(0, 0, kernel1);
    tensor(dead, 'conv1.bias')[0] = -1;
    const huge = 1000 * conv2w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const [outChannels, inChannels] = [tensor(checkpoint, 'conv2.bias').length, conv1b.length];
    const kernel2 = conv2w.length / (outChannels * inChannels);
    for (let o = 0; o < outChannels; o++)
      tensor(dead, 'conv2.weight').fill(huge, o * inChannels * kernel2, (o * inChannels + 1) * kernel2);
    await saveCheckpoint(path, dead);
    await expect(exportRun({ run: runDir, out, variant: 'int8', test: data.test })).rejects.toThrow(
      /validation failed, nothing written: the int8 variant loses \d+\.\d\d pp of accuracy \(allowed 1\)/,
    );
    expect(existsSync(join(out, 'cnn-int8'))).toBe(false);
    // The same weights export in float32, validated against the training graph: the refusals are the variants'.
    const fp32 = await exportRun({ run: runDir, out, test: data.test });
    expect(fp32.accuracy).toBeGreaterThan(50);
    expect(readdirSync(out)).toEqual(['cnn']);
  }, 120_000);

  it('refuses bad names and versions', () => {
    for (const bad of ['../etc', 'Cnn', '-x', 'a/b', '', '..', 'a..b'])
      expect(() => checkModelName(bad), bad).toThrow(/invalid model name/);
    for (const bad of ['0', '-1', '1.5', 'latest', '01'])
      expect(() => checkVersion(bad), bad).toThrow(/invalid version/);
    expect(checkModelName('cnn-v2.1_b')).toBe('cnn-v2.1_b');
  });

  it('fails in one line on a bad run directory or name', async () => {
    const failure = (...args: string[]) => failingCli(exportMain, ...args);
    expect(await failure('--run', '/nonexistent')).toBe('error: /nonexistent is not a run directory (no config.json)');
    const runDir = await trainedRun('cnn');
    expect(await failure('--run', runDir, '--name', '../../evil', '--out', tmp('m-'))).toMatch(
      /^error: invalid model name '..\/..\/evil'/,
    );
    expect(existsSync(join(runDir, 'evil'))).toBe(false);
  }, 60_000);
});

describe('inspect', () => {
  it('reads an ONNX file made by torch.onnx.export (opset 13, Shape→Gather→Unsqueeze→Concat→Reshape flatten)', async () => {
    const { stdout } = await passingCli(inspectMain, 'test/fixtures/torch-cnn-opset13.onnx');
    expect(stdout).toMatch(/IR version 7, opsets ai\.onnx 13/);
    expect(stdout).toMatch(/producer: pytorch 1\.13/);
    expect(stdout).toMatch(/parameters: 8,490 in 6 initializers/);
    for (const op of ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape'])
      expect(stdout).toMatch(new RegExp(`^ {2}${op} +1$`, 'm'));
    expect(stdout).not.toMatch(/metadata:/);
  });

  it('says clearly when a file is missing or not ONNX', async () => {
    expect(await failingCli(inspectMain, 'package.json')).toMatch(/^error: not an ONNX model/);
  });
});

describe('export into a repository it does not own parts of', () => {
  it('refuses a model or version folder that is a link (even with --force), and a config.pbtxt that is no regular file, touching nothing', async () => {
    const runDir = await trainedRun('cnn');
    const out = tmp('models-linked-');
    const elsewhere = tmp('elsewhere-');
    writeFileSync(join(elsewhere, 'model.onnx'), 'my own model');
    mkdirSync(join(out, 'cnn'));
    symlinkSync(elsewhere, join(out, 'cnn', '1'));
    await expect(exportRun({ run: runDir, out, version: 1, force: true, test: data.test })).rejects.toThrow(
      /cnn\/1 is a link; export writes only into folders of the repository itself/,
    );
    expect(readFileSync(join(elsewhere, 'model.onnx'), 'utf8')).toBe('my own model');
    // The model folder linked elsewhere: nothing written there either.
    const out2 = tmp('models-linked2-');
    symlinkSync(elsewhere, join(out2, 'cnn'));
    await expect(exportRun({ run: runDir, out: out2, test: data.test })).rejects.toThrow(/cnn is a link/);
    expect(readdirSync(elsewhere)).toEqual(['model.onnx']);
    // A FIFO as config.pbtxt (the export waited on it forever): refused, unread.
    const out3 = tmp('models-fifo-');
    mkdirSync(join(out3, 'cnn'));
    execFileSync('mkfifo', [join(out3, 'cnn', 'config.pbtxt')]);
    await expect(exportRun({ run: runDir, out: out3, test: data.test })).rejects.toThrow(
      /config\.pbtxt is a FIFO, not a regular file; nothing written/,
    );
    expect(readdirSync(join(out3, 'cnn'))).toEqual(['config.pbtxt']);
    // A file where the version folder would go: one line of ours (it was Node's raw EEXIST), the file kept.
    const out4 = tmp('models-file-');
    mkdirSync(join(out4, 'cnn'));
    writeFileSync(join(out4, 'cnn', '2'), 'mine');
    await expect(exportRun({ run: runDir, out: out4, version: 2, force: true, test: data.test })).rejects.toThrow(
      /cnn\/2 is a file, not a folder; export leaves it as it is/,
    );
    expect(readFileSync(join(out4, 'cnn', '2'), 'utf8')).toBe('mine');
  });
});
