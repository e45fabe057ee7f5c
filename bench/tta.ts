/**
 * Test-time augmentation on an exported model: its accuracy on the images as they are, on each fixed view
 * (one-pixel shifts, small rotations, scalings: the training augmentation's warp, core/training/augment.ts,
 * applied with fixed parameters), and on the mean softmax of each view set. A check, not part of a recipe
 * unless one says so; choose a set with `--validation <n>` (the training set's last n images, as `train
 * --validation n` holds them out), never on the test set.
 *
 *   npx tsx bench/tta.ts <models>/<name>/<version>/model.onnx [--validation 10000]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IMAGE_PIXELS, NUM_CLASSES } from '../core/contract.ts';
import { accuracyOf, batchedLogitsOf } from '../core/deploy/validate.ts';
import { softmax } from '../core/softmax.ts';
import { type Warp, warpImage } from '../core/training/augment.ts';
import { nodeRuntime } from '../node/execution.ts';
import { holdOut, loadMnist } from '../node/mnist.ts';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { validation: { type: 'string' } } });
const [modelPath] = positionals;
if (!modelPath) throw new Error('usage: npx tsx bench/tta.ts <model.onnx> [--validation <n>]');
const validation = values.validation === undefined ? undefined : Number(values.validation);
const data = validation === undefined ? await loadMnist('test') : holdOut(await loadMnist('train'), validation)[1];
const where = validation === undefined ? 'the test set' : `the training set's last ${validation} images`;
const raw = Float32Array.from(data.images, (v) => v / 255); // clients' raw [0, 1] pixels, background 0

const still: Warp = { degrees: 0, scale: 1, shiftX: 0, shiftY: 0 };
const views: Record<string, Warp> = {
  'as they are': still,
  'right 1': { ...still, shiftX: 1 },
  'left 1': { ...still, shiftX: -1 },
  'down 1': { ...still, shiftY: 1 },
  'up 1': { ...still, shiftY: -1 },
  'rotated +5°': { ...still, degrees: 5 },
  'rotated −5°': { ...still, degrees: -5 },
  'rotated +10°': { ...still, degrees: 10 },
  'rotated −10°': { ...still, degrees: -10 },
  'scaled 0.9': { ...still, scale: 0.9 },
  'scaled 1.1': { ...still, scale: 1.1 },
};
const sets: Record<string, string[]> = {
  'one-pixel shifts (5 views)': ['as they are', 'right 1', 'left 1', 'down 1', 'up 1'],
  'rotations ±5° (3)': ['as they are', 'rotated +5°', 'rotated −5°'],
  'rotations ±5°, ±10° (5)': ['as they are', 'rotated +5°', 'rotated −5°', 'rotated +10°', 'rotated −10°'],
  'scalings 0.9, 1.1 (3)': ['as they are', 'scaled 0.9', 'scaled 1.1'],
  'rotations ±5° and scalings (5)': ['as they are', 'rotated +5°', 'rotated −5°', 'scaled 0.9', 'scaled 1.1'],
  'all (11)': Object.keys(views),
};

function warped(warp: Warp): Float32Array {
  const out = new Float32Array(raw.length);
  for (let i = 0; i < data.count; i++) {
    const at = i * IMAGE_PIXELS;
    warpImage(raw.subarray(at, at + IMAGE_PIXELS), out.subarray(at, at + IMAGE_PIXELS), warp, 0);
  }
  return out;
}

const names = Object.keys(views);
const inputs = names.map((name) => ({ images: warped(views[name] as Warp), count: data.count }));
const logits = await batchedLogitsOf(nodeRuntime, readFileSync(modelPath), inputs, { device: 'cpu', threads: 2 });
const probabilities = new Map(
  names.map((name, v) => {
    const rows = logits[v] as Float32Array;
    const p = new Float32Array(rows.length);
    for (let i = 0; i < data.count; i++)
      p.set(softmax(rows.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)), i * NUM_CLASSES);
    return [name, p];
  }),
);
const percent = (rows: Float32Array) => `${accuracyOf(rows, data.labels, data.count).toFixed(2)}%`;

console.log(`${modelPath} on ${where} (${data.count} images)`);
for (const name of names) console.log(`  ${name}: ${percent(probabilities.get(name) as Float32Array)}`);
for (const [set, members] of Object.entries(sets)) {
  const mean = new Float32Array(data.count * NUM_CLASSES);
  for (const name of members) {
    const p = probabilities.get(name) as Float32Array;
    for (let j = 0; j < mean.length; j++) mean[j] = (mean[j] as number) + (p[j] as number);
  }
  console.log(`  mean of ${set}: ${percent(mean)}`);
}
