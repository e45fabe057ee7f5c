/**
 * Test-time augmentation by one-pixel shifts, on an exported model: its test accuracy on the images as
 * they are, on each of the four one-pixel shifts, and on the mean of the five softmax outputs. How
 * bench/results-best-recipe.md's TTA figure was measured. A check, not part of any recipe.
 *
 *   npx tsx bench/shift-tta.ts <models>/<name>/<version>/model.onnx
 */
import { readFileSync } from 'node:fs';
import { IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES } from '../core/contract.ts';
import { accuracyOf, batchedLogitsOf } from '../core/deploy/validate.ts';
import { softmax } from '../core/softmax.ts';
import { nodeRuntime } from '../node/execution.ts';
import { loadMnist } from '../node/mnist.ts';

const [modelPath] = process.argv.slice(2);
if (!modelPath) throw new Error('usage: npx tsx bench/shift-tta.ts <model.onnx>');
const test = await loadMnist('test');
const raw = Float32Array.from(test.images, (v) => v / 255); // clients' raw [0, 1] pixels

/** Every image moved by (dx, dy) pixels, zeros where it moved from. */
function shifted(dx: number, dy: number): Float32Array {
  const out = new Float32Array(raw.length);
  for (let i = 0; i < test.count; i++)
    for (let y = Math.max(0, dy); y < Math.min(IMAGE_SIDE, IMAGE_SIDE + dy); y++)
      for (let x = Math.max(0, dx); x < Math.min(IMAGE_SIDE, IMAGE_SIDE + dx); x++)
        out[i * IMAGE_PIXELS + y * IMAGE_SIDE + x] = raw[i * IMAGE_PIXELS + (y - dy) * IMAGE_SIDE + (x - dx)] as number;
  return out;
}

const shifts = [
  [1, 0],
  [-1, 0],
  [0, 1],
  [0, -1],
] as const;
const sets = [raw, ...shifts.map(([dx, dy]) => shifted(dx, dy))].map((images) => ({ images, count: test.count }));
const logits = await batchedLogitsOf(nodeRuntime, readFileSync(modelPath), sets, { device: 'cpu', threads: 2 });
const percent = (rows: Float32Array) => `${accuracyOf(rows, test.labels, test.count).toFixed(2)}%`;
const mean = new Float32Array(test.count * NUM_CLASSES);
logits.forEach((set, s) => {
  console.log(s === 0 ? `as they are: ${percent(set)}` : `shifted (${shifts[s - 1]}): ${percent(set)}`);
  for (let i = 0; i < test.count; i++)
    softmax(set.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)).forEach((p, k) => {
      mean[i * NUM_CLASSES + k] = (mean[i * NUM_CLASSES + k] as number) + p;
    });
});
console.log(`mean of the five: ${percent(mean)}`);
