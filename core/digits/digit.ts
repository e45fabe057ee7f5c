/**
 * The digit preprocessing shared by the server and the web demo, so both feed models the same 28×28
 * image — from a canvas drawing, a scan or a phone photo of handwriting on paper:
 *  1. grayscale, big pictures box-averaged down early (grayscale.ts);
 *  2. the paper's light estimated and divided out: ink darkness relative to the local paper (background.ts);
 *  3. ink thresholds: Otsu above the paper's noise, with hysteresis for faint edges (threshold.ts);
 *  4. which way round the ink is, decided from the data — both readings tried: paper level, ink-to-noise
 *     separation, minority of ink — then the paper re-estimated to follow sharp shadows (polarity.ts);
 *  5. the digit's marks kept, specks and marks off the picture's edge dropped (components.ts);
 *  6. MNIST's own steps: bounding box → 20×20 keeping the aspect ratio, centre of mass at the centre of
 *     28×28 (mnist-box.ts);
 *  7. a stroke thicker than MNIST's 99th percentile thinned to it, and step 6 again (stroke.ts);
 * giving intensities in [0, 1], white ink on black. Pure TypeScript on typed arrays: no DOM, no Node APIs.
 */
import { IMAGE_SIDE } from '../contract.ts';
import { BlankImageError } from './blank.ts';
import type { DigitMask } from './components.ts';
import { type GrayImage, grayscaleFromRgba } from './grayscale.ts';
import { toMnistInput } from './mnist-box.ts';
import { morph } from './morphology.ts';
import { readInk } from './polarity.ts';
import { strokeCorrection } from './stroke.ts';
import type { InkLevels } from './threshold.ts';

export { BlankImageError } from './blank.ts';
export type { GrayImage } from './grayscale.ts';

/** The side of the model's input image. */
export const SIDE = IMAGE_SIDE;

/**
 * The digit's ink as MNIST draws it — white on black, a stroke's core at 1 — kept only on the digit's
 * pixels and their 8 neighbours (its anti-aliased edge).
 */
function inkImage(
  darkness: Float32Array,
  digit: DigitMask,
  width: number,
  height: number,
  levels: InkLevels,
  margin: number,
): GrayImage {
  const { mask } = digit;
  const [x0, y0] = [digit.minX - margin, digit.minY - margin];
  const cropW = digit.maxX - digit.minX + 1 + 2 * margin;
  const cropH = digit.maxY - digit.minY + 1 + 2 * margin;
  const data = new Float32Array(cropW * cropH);
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
      data[(y - y0) * cropW + (x - x0)] = Math.min(1, Math.max(0, v));
    }
  return { width: cropW, height: cropH, data };
}

/** RGBA pixels (a canvas, a decoded PNG/JPEG) → the model's input, whatever the ink colour and the light. */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  const gray = grayscaleFromRgba(rgba, width, height);
  const ink = readInk(gray);
  if (!ink) throw new BlankImageError('the image has no ink (it is blank)');
  const { digit } = ink;
  const side = Math.max(digit.maxX - digit.minX + 1, digit.maxY - digit.minY + 1);
  // A margin for thickening by up to a third of the digit's size.
  const image = inkImage(ink.darkness, digit, gray.width, gray.height, ink.levels, Math.ceil(side / 6) + 2);
  const first = toMnistInput(image);
  const radius = strokeCorrection(first, side);
  if (radius === 0) return first;
  try {
    return toMnistInput(morph(image, Math.max(-side / 8, Math.min(side / 6, radius))));
  } catch (error) {
    if (error instanceof BlankImageError) return first; // thinned away: keep the stroke as it was
    throw error;
  }
}
