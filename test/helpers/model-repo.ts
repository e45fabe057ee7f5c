/**
 * Model repositories for server tests: the committed fixture (the simple CNN as `npm run export` wrote
 * it, 98.6% on MNIST) plus a torch-made file — no training per test file (export has its own tests).
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Dataset, loadMnist } from '../../node/mnist.ts';
import { oddModel } from '../../testkit/odd-models.ts';

/** The exported simple CNN the server tests serve. */
export const EXPORTED_CNN = 'test/fixtures/models/cnn/1/model.onnx';

export async function makeModelRepository(): Promise<{ root: string; test: Dataset }> {
  const test = await loadMnist('test');
  const root = mkdtempSync(join(tmpdir(), 'models-'));
  mkdirSync(join(root, 'cnn', '1'), { recursive: true });
  copyFileSync(EXPORTED_CNN, join(root, 'cnn', '1', 'model.onnx'));
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  return { root, test };
}

/** A repository with one tiny linear model (odd-models.ts): for server tests about clients, not models. */
export function makeTinyRepository(): string {
  const root = mkdtempSync(join(tmpdir(), 'models-tiny-'));
  mkdirSync(join(root, 'tiny', '1'), { recursive: true });
  writeFileSync(join(root, 'tiny', '1', 'model.onnx'), oddModel({ metadata: { normalization: 'folded (test)' } }));
  return root;
}
