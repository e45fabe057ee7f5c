/**
 * The load-time proof that answers can't cross between clients: for every batch size the batcher will
 * ever run (verifiedSizes), each image's row in a batch equals its row when run alone, and a reversed
 * batch of the largest size gives the same rows, reversed. The images are distinct and varied. The
 * batcher pads every run up to one of these sizes, so no run of an unchecked size ever happens.
 */
import { IMAGE_PIXELS, IMAGE_SIDE } from '../core/contract.ts';
import type { Outputs, RunBatch } from './batcher.ts';
import { ContractError, checkRows, type ModelSignature } from './model-contract.ts';
import { MAX_OUTPUT_VALUES_PER_IMAGE } from './runner/limits.ts';

/** Powers of two below `maxBatch`, and `maxBatch` itself: the only batch sizes ever run. */
export function verifiedSizes(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let s = 1; s < maxBatch; s *= 2) sizes.push(s);
  sizes.push(maxBatch);
  return sizes;
}

/** `count` distinct, deterministic test images: blank, bright, strokes and noise. */
export function probeImages(count: number): Float32Array {
  const images = new Float32Array(count * IMAGE_PIXELS);
  let seed = 12345;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let n = 1; n < count; n++) {
    const image = images.subarray(n * IMAGE_PIXELS, (n + 1) * IMAGE_PIXELS);
    const kind = n % 3;
    for (let i = 0; i < IMAGE_PIXELS; i++) {
      const [y, x] = [Math.floor(i / IMAGE_SIDE), i % IMAGE_SIDE];
      if (kind === 0) image[i] = random();
      else if (kind === 1) image[i] = Math.abs(x - 14 - ((n * 3) % 9) + 4) < 2 && y > 4 && y < 24 ? 1 : 0;
      else image[i] = ((i * (7919 + n)) % 255) / 255;
    }
  }
  return images;
}

const TOLERANCE = 1e-3;

function compareRows(name: string, got: Float32Array, want: Float32Array, size: number, batch: number): void {
  for (let k = 0; k < size; k++) {
    const [a, b] = [got[k] as number, want[k] as number];
    if (Object.is(a, b)) continue; // equal, infinities and NaNs included
    if (!(Math.abs(a - b) <= TOLERANCE * Math.max(1, Math.abs(b))))
      throw new ContractError(
        `output ${name} of an image changes with the other images in its batch (batch of ${batch}): answers could cross between clients`,
      );
  }
}

/** Check `run` at every size in `sizes` (ascending); returns each output's elements per image. */
export async function checkBatchIndependence(
  signature: ModelSignature,
  run: RunBatch,
  sizes: number[],
): Promise<Record<string, number>> {
  const largest = sizes.at(-1) ?? 1;
  const images = probeImages(Math.max(2, largest));
  const image = (n: number) => images.subarray(n * IMAGE_PIXELS, (n + 1) * IMAGE_PIXELS);
  const first = await run(images.slice(0, 2 * IMAGE_PIXELS), 2);
  const rowSizes = checkRows(signature, first, 2);
  const perImage = Object.values(rowSizes).reduce((a, b) => a + b, 0);
  if (perImage > MAX_OUTPUT_VALUES_PER_IMAGE)
    throw new ContractError(
      `the outputs give ${perImage} values per image; this server answers at most ${MAX_OUTPUT_VALUES_PER_IMAGE}`,
    );
  if (signature.staticBatchOne) return rowSizes; // one image per run: nothing to cross
  const alone: Outputs[] = [];
  for (let n = 0; n < Math.max(2, largest); n++) alone.push(await run(image(n).slice(), 1));
  const check = (outputs: Outputs, count: number, imageAt: (row: number) => number) => {
    checkRows(signature, outputs, count);
    for (const [name, size] of Object.entries(rowSizes))
      for (let row = 0; row < count; row++)
        compareRows(
          name,
          (outputs[name] as Float32Array).subarray(row * size, (row + 1) * size),
          alone[imageAt(row)]?.[name] as Float32Array,
          size,
          count,
        );
  };
  check(first, 2, (row) => row);
  for (const size of sizes) if (size > 1) check(await run(images.slice(0, size * IMAGE_PIXELS), size), size, (r) => r);
  const reversed = new Float32Array(largest * IMAGE_PIXELS);
  for (let n = 0; n < largest; n++) reversed.set(image(largest - 1 - n), n * IMAGE_PIXELS);
  check(await run(reversed, largest), largest, (row) => largest - 1 - row);
  return rowSizes;
}
