/** A real model repository for server tests: a briefly trained simple CNN, exported, plus a torch-made file. */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, loadMnist, take } from '../../runtime/data/mnist.ts';
import { oddModel } from '../../testkit/odd-models.ts';
import { exportRun } from '../../train/export-run.ts';
import { trainRun } from '../../train/loop.ts';
import { TUTORIAL_RECIPE } from '../../train/run-config.ts';

export async function makeModelRepository(): Promise<{ root: string; runDir: string; test: Dataset }> {
  const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
  const runDir = mkdtempSync(join(tmpdir(), 'serve-run-'));
  const small = take(test, 1000);
  await trainRun({
    config: { ...TUTORIAL_RECIPE, model: 'cnn', epochs: 1, lr: 0.05, limit: 6000 },
    dir: runDir,
    data: { train, test: small },
  });
  const root = mkdtempSync(join(tmpdir(), 'models-'));
  await exportRun({ run: runDir, out: root, version: 1, test: small });
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  return { root, runDir, test };
}

/** A repository with one tiny linear model (odd-models.ts): for server tests about clients, not models. */
export function makeTinyRepository(): string {
  const root = mkdtempSync(join(tmpdir(), 'models-tiny-'));
  mkdirSync(join(root, 'tiny', '1'), { recursive: true });
  writeFileSync(join(root, 'tiny', '1', 'model.onnx'), oddModel({ metadata: { normalization: 'folded (test)' } }));
  return root;
}
