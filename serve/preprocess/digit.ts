/**
 * The digit preprocessing shared by the server and the web demo, so both feed models the same 28×28
 * image — from a canvas drawing, a scan or a phone photo of handwriting on paper:
 *  1. grayscale, big pictures box-averaged down early (grayscale.ts);
 *  2. which way round the ink is, decided from the data (background.ts: border and minority cues);
 *  3. the paper's light estimated and divided out: ink darkness relative to the local paper (background.ts);
 *  4. ink thresholds: Otsu above the paper's noise, with hysteresis for faint edges (threshold.ts);
 *  5. the digit's marks kept, specks and marks off the picture's edge dropped (components.ts);
 *  6. MNIST's own steps: bounding box → 20×20 keeping the aspect ratio, centre of mass at the centre of
 *     28×28 (mnist-box.ts);
 * giving intensities in [0, 1], white ink on black. Pure TypeScript on typed arrays: no DOM, no Node APIs.
 */
import { IMAGE_SIDE } from '../../runtime/contract.ts';
import { inkDarkness, inkIsLight } from './background.ts';
import { BlankImageError } from './blank.ts';
import { digitMask } from './components.ts';
import { type GrayImage, grayscaleFromRgba } from './grayscale.ts';
import { toMnistInput } from './mnist-box.ts';
import { type InkLevels, inkLevels } from './threshold.ts';

export { BlankImageError } from './blank.ts';
export type { GrayImage } from './grayscale.ts';

/** The side of the model's input image. */
export const SIDE = IMAGE_SIDE;

/**
 * The digit's ink as MNIST draws it — white on black, a stroke's core at 1 — kept only on the digit's
 * pixels and their 8 neighbours (its anti-aliased edge).
 */
function inkImage(darkness: Float32Array, mask: Uint8Array, width: number, height: number, levels: InkLevels) {
  const data = new Float32Array(width * height);
  const floor = levels.weak / 2;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
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

const invert = (image: GrayImage): GrayImage => ({ ...image, data: image.data.map((v) => 1 - v) });

/** RGBA pixels (a canvas, a decoded PNG/JPEG) → the model's input, whatever the ink colour and the light. */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  const gray = grayscaleFromRgba(rgba, width, height);
  const paperLight = inkIsLight(gray) ? invert(gray) : gray;
  const darkness = inkDarkness(paperLight);
  const levels = inkLevels(darkness);
  const digit = levels && digitMask(darkness, gray.width, gray.height, levels);
  if (!levels || !digit) throw new BlankImageError('the image has no ink (it is blank)');
  return toMnistInput(inkImage(darkness, digit.mask, gray.width, gray.height, levels));
}
