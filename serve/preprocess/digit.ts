/**
 * The digit preprocessing shared by the server and the web demo, so both feed models the same 28×28
 * image — from a canvas drawing, a scan or a phone photo of handwriting on paper:
 *  1. grayscale, big pictures box-averaged down early (grayscale.ts);
 *  2. the paper's light estimated and divided out: ink darkness relative to the local paper (background.ts);
 *  3. ink thresholds: Otsu above the paper's noise, with hysteresis for faint edges (threshold.ts);
 *  4. which way round the ink is, decided from the data: the reading with less ink (polarity.ts);
 *  5. the digit's marks kept, specks and marks off the picture's edge dropped (components.ts);
 *  6. MNIST's own steps: bounding box → 20×20 keeping the aspect ratio, centre of mass at the centre of
 *     28×28 (mnist-box.ts);
 * giving intensities in [0, 1], white ink on black. Pure TypeScript on typed arrays: no DOM, no Node APIs.
 */
import { IMAGE_SIDE } from '../../runtime/contract.ts';
import { BlankImageError } from './blank.ts';
import { type DigitMask, digitMask } from './components.ts';
import { grayscaleFromRgba } from './grayscale.ts';
import { toMnistInput } from './mnist-box.ts';
import { readInk } from './polarity.ts';
import type { InkLevels } from './threshold.ts';

export { BlankImageError } from './blank.ts';
export type { GrayImage } from './grayscale.ts';

/** The side of the model's input image. */
export const SIDE = IMAGE_SIDE;

/**
 * The digit's ink as MNIST draws it — white on black, a stroke's core at 1 — kept only on the digit's
 * pixels and their 8 neighbours (its anti-aliased edge).
 */
function inkImage(darkness: Float32Array, digit: DigitMask, width: number, height: number, levels: InkLevels) {
  const { mask } = digit;
  const data = new Float32Array(width * height);
  const floor = levels.weak / 2;
  for (let y = Math.max(0, digit.minY - 1); y <= Math.min(height - 1, digit.maxY + 1); y++)
    for (let x = Math.max(0, digit.minX - 1); x <= Math.min(width - 1, digit.maxX + 1); x++) {
      let near = 0;
      for (let dy = -1; dy <= 1 && !near; dy++)
        for (let dx = -1; dx <= 1 && !near; dx++) {
          const [xx, yy] = [x + dx, y + dy];
          if (xx >= 0 && yy >= 0 && xx < width && yy < height) near = mask[yy * width + xx] as number;
        }
      if (!near) continue;
      const v = ((darkness[y * width + x] as number) - floor) / (levels.full - floor);
      data[y * width + x] = Math.min(1, Math.max(0, v));
    }
  return { width, height, data };
}

/** RGBA pixels (a canvas, a decoded PNG/JPEG) → the model's input, whatever the ink colour and the light. */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  const gray = grayscaleFromRgba(rgba, width, height);
  const ink = readInk(gray);
  const digit = ink && digitMask(ink.darkness, gray.width, gray.height, ink.levels);
  if (!ink || !digit) throw new BlankImageError('the image has no ink (it is blank)');
  return toMnistInput(inkImage(ink.darkness, digit, gray.width, gray.height, ink.levels));
}
