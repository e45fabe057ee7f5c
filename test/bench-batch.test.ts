/**
 * `npm run bench -- --what train` compares steps on one fixed batch: ours (bench/train-throughput.ts) and
 * PyTorch's (bench/torch_train.py --data) must read the same images and labels, or the ratio compares
 * different work. Needs Debian's PyTorch (skipped without it).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON } from '../bench/torch.ts';
import { benchBatch } from '../bench/train-throughput.ts';
import { mnistDataDir } from '../node/mnist.ts';

const BENCH = resolve(import.meta.dirname, '..', 'bench');
const READ = `
import json, sys
sys.path.insert(0, sys.argv[1])
from torch_train import first_batch
x, y = first_batch(sys.argv[2], int(sys.argv[3]))
print(json.dumps({"shape": list(x.shape), "values": x.flatten().tolist(), "labels": y.tolist()}))`;

function torchBatch(batch: number): { shape: number[]; values: number[]; labels: number[] } | undefined {
  try {
    return JSON.parse(execFileSync(PYTHON, ['-c', READ, BENCH, mnistDataDir(), String(batch)], { encoding: 'utf8' }));
  } catch (error) {
    if (/No module named 'torch'|ENOENT/.test(String((error as Error).message))) return undefined;
    throw error;
  }
}

const theirs = torchBatch(64);

describe.skipIf(!theirs)('the train benchmark batch', () => {
  it('is the same real digits, normalized the same, on both sides', async () => {
    const ours = await benchBatch(64);
    expect(theirs?.shape).toEqual([64, 1, 28, 28]);
    expect(ours.labels).toEqual(theirs?.labels);
    expect(new Set(ours.labels).size).toBeGreaterThan(5); // real labels, not one class
    const values = theirs?.values ?? [];
    let worst = 0;
    for (const [i, v] of ours.images.entries()) worst = Math.max(worst, Math.abs(v - (values[i] as number)));
    expect(worst).toBeLessThan(1e-6);
    expect(Math.min(...ours.images)).toBeCloseTo(-0.1307 / 0.3081, 5); // background, as the tutorial normalizes it
  });
});
