/**
 * The GPU kit's CPU table (bench/device/cpu-bench.ts) as pack.sh ships it: bundled by esbuild into one .mjs per
 * entry, the training workers from their own bundle (no tsx), run by plain node. Checks the table row of a
 * 2-worker step, which only a bundled worker thread can produce, and the one-epoch table (the training loop, its
 * charts). PyTorch is left out (a python that isn't there).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const kit = mkdtempSync(join(tmpdir(), 'kit-cpu-'));
afterAll(() => rmSync(kit, { recursive: true, force: true }));

describe('GPU kit CPU bench, bundled', () => {
  it('runs 2 worker threads from the bundles and prints the train table with its machine', async () => {
    mkdirSync(join(kit, 'app'));
    symlinkSync(join(ROOT, 'node_modules'), join(kit, 'app', 'node_modules'));
    for (const entry of ['bench/device/cpu-bench.ts', 'train/parallel/training-worker.ts'])
      await build({
        entryPoints: [join(ROOT, entry)],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        external: ['onnxruntime-node', '@resvg/resvg-js'],
        outdir: join(kit, 'app'),
        outExtension: { '.js': '.mjs' },
        logLevel: 'silent',
        banner: {
          js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
        },
      });
    const args = ['--models', 'cnn', '--threads', '2', '--rounds', '1', '--seconds', '0.3'];
    const { stdout } = await promisify(execFile)(process.execPath, [join(kit, 'app', 'cpu-bench.mjs'), ...args], {
      env: { ...process.env, MNIST_ONNX_CNN_PYTHON: join(kit, 'no-python') },
    });
    expect(stdout).toMatch(/^PyTorch not found: ours only$/m);
    expect(stdout).toMatch(/^\| cnn \| 2 \| 2 workers(, native kernels)? \| [1-9]\d* \| – \|/m);
    expect(stdout).toMatch(/^## Machine$/m);

    // The epoch table: `train`'s loop from the bundle, its run charts drawn by vega (bundled) and resvg (beside).
    const epoch = await promisify(execFile)(
      process.execPath,
      [join(kit, 'app', 'cpu-bench.mjs'), '--what', 'epoch', '--models', 'cnn', '--threads', '1', '--rounds', '1'],
      { env: { ...process.env, MNIST_ONNX_CNN_PYTHON: join(kit, 'no-python') } },
    );
    expect(epoch.stdout).toMatch(/^\| cnn \| 1 \| \d+\.\d \| – \| – \| 9\d\.\d\d \|/m);
  }, 180_000);
});
