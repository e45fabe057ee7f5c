/** The export and inspect commands: deployable models, validated, in the model repository. */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../export/onnx/codec.ts';
import { describeModel } from '../export/onnx/describe.ts';
import { checkModelName, checkVersion } from '../export/repository.ts';
import { type Dataset, loadMnist, take } from '../train/data/mnist.ts';
import { exportRun } from '../train/export-run.ts';
import { trainRun } from '../train/loop.ts';
import { TUTORIAL_RECIPE } from '../train/run-config.ts';
import { failingScript, runScript } from './helpers/cli.ts';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const data = { train: take(train, 2000), test: take(test, 1000) as Dataset };

async function trainedRun(model: 'cnn' | 'densenet', epochs = 1) {
  const dir = tmp(`run-${model}-`);
  await trainRun({ config: { ...TUTORIAL_RECIPE, model, epochs, lr: 0.05, batchSize: 32 }, dir, data });
  return dir;
}

describe('export', () => {
  it('cnn: folds the normalization into conv1, validates against the training graph, and round-trips through inspect', async () => {
    const runDir = await trainedRun('cnn');
    const out = tmp('models-');
    const { stdout } = await runScript('train/cli/export.ts', '--run', runDir, '--out', out);
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
    const inspected = (await runScript('export/cli/inspect.ts', path)).stdout;
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
    expect(report.disagreements).toBe(0);
    expect(report.maxLogitDifference).toBeLessThan(1e-3);
    // The exported file takes raw [0, 1] pixels and gives probabilities that sum to 1.
    const session = await ort.InferenceSession.create(report.path);
    const image = Float32Array.from(data.test.images.subarray(0, 784), (v) => v / 255);
    const outputs = await session.run({ input: new ort.Tensor('float32', image, [1, 1, 28, 28]) });
    const p = outputs.probabilities?.data as Float32Array;
    expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
  }, 120_000);

  it('never overwrites a version without --force, and numbers new versions', async () => {
    const runDir = await trainedRun('cnn');
    const out = tmp('models-');
    const first = await exportRun({ run: runDir, out, test: data.test });
    const before = readFileSync(first.path);
    await expect(exportRun({ run: runDir, out, version: 1, test: data.test })).rejects.toThrow(
      /cnn\/1\/model\.onnx exists; choose another --version or pass --force/,
    );
    expect(readFileSync(first.path).equals(before)).toBe(true);
    expect((await exportRun({ run: runDir, out, test: data.test })).version).toBe(2);
    expect((await exportRun({ run: runDir, out, version: 1, force: true, test: data.test })).version).toBe(1);
  }, 60_000);

  it('fp16 and int8 variants: half and a quarter of the size, within the accuracy bounds they report, runnable in ORT', async () => {
    const runDir = await trainedRun('cnn', 2);
    const out = tmp('models-');
    const fp16 = await exportRun({ run: runDir, out, variant: 'fp16', test: data.test });
    const int8 = await exportRun({ run: runDir, out, variant: 'int8', test: data.test });
    for (const r of [fp16, int8]) {
      const v = r.variant;
      expect(v).toBeDefined();
      if (!v) continue;
      expect(v.fp32Accuracy - r.accuracy).toBeLessThanOrEqual(v.variant === 'fp16' ? 0.1 : 1);
      const info = describeModel(decodeModel(readFileSync(r.path)));
      expect(info.parameterCount).toBe(8_490);
      expect(info.metadata.precision).toMatch(v.variant === 'fp16' ? /^fp16 weights/ : /^int8 weights/);
      // Runs in a plain ORT session and agrees with the float32 model on nearly every test image.
      const session = await ort.InferenceSession.create(r.path);
      const image = Float32Array.from(data.test.images.subarray(0, 784), (x) => x / 255);
      const p = (await session.run({ input: new ort.Tensor('float32', image, [1, 1, 28, 28]) })).probabilities
        ?.data as Float32Array;
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
    expect(fp16.bytes / (fp16.variant?.fp32Bytes ?? 1)).toBeLessThan(0.6);
    expect(int8.bytes / (int8.variant?.fp32Bytes ?? 1)).toBeLessThan(0.35);
  }, 120_000);

  it('refuses bad names and versions', () => {
    for (const bad of ['../etc', 'Cnn', '-x', 'a/b', '', '..', 'a..b'])
      expect(() => checkModelName(bad), bad).toThrow(/invalid model name/);
    for (const bad of ['0', '-1', '1.5', 'latest', '01'])
      expect(() => checkVersion(bad), bad).toThrow(/invalid version/);
    expect(checkModelName('cnn-v2.1_b')).toBe('cnn-v2.1_b');
  });

  it('fails in one line on a bad run directory or name', async () => {
    const failure = (...args: string[]) => failingScript('train/cli/export.ts', ...args);
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
    const { stdout } = await runScript('export/cli/inspect.ts', 'test/fixtures/torch-cnn-opset13.onnx');
    expect(stdout).toMatch(/IR version 7, opsets ai\.onnx 13/);
    expect(stdout).toMatch(/producer: pytorch 1\.13/);
    expect(stdout).toMatch(/parameters: 8,490 in 6 initializers/);
    for (const op of ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape'])
      expect(stdout).toMatch(new RegExp(`^ {2}${op} +1$`, 'm'));
    expect(stdout).not.toMatch(/metadata:/);
  });

  it('says clearly when a file is missing or not ONNX', async () => {
    expect(await failingScript('export/cli/inspect.ts', 'package.json')).toMatch(/^error: not an ONNX model/);
  });
});
