/**
 * Which way round the ink is — dark on light paper, or chalk-light on a dark board — decided from the
 * data, not from the mean. Both readings are tried (the paper's light removed each way round,
 * thresholded, the digit's marks chosen), and the right one is:
 *  1. the one whose paper (the median block's level) is clearly lighter — paper is what most of each
 *     block is, and dividing by a dark "paper" only magnifies noise;
 *  2. else the one whose ink stands clearly further out of its paper's noise;
 *  3. else the one whose digit has less sure ink: ink is the minority, and the wrong reading takes the
 *     paper around every stroke for ink.
 * Then the chosen reading is refined with a background that follows sharp shadows.
 */
import { inkDarkness, paperLevel } from './background.ts';
import { type DigitMask, digitMask } from './components.ts';
import type { GrayImage } from './grayscale.ts';
import { type InkLevels, inkLevels } from './threshold.ts';

/** Ink darkness relative to the local paper, its levels, and which way round the ink was. */
export interface InkReading {
  darkness: Float32Array;
  levels: InkLevels;
  lightInk: boolean;
  digit: DigitMask;
}

function read(
  image: GrayImage,
  lightInk: boolean,
  radius = 0,
): (InkReading & { sure: number; paper: number }) | undefined {
  const { darkness, paper } = inkDarkness(lightInk ? { ...image, data: image.data.map((v) => 1 - v) } : image, radius);
  const levels = inkLevels(darkness);
  if (!levels) return undefined;
  const digit = digitMask(darkness, image.width, image.height, levels);
  if (!digit) return undefined;
  let sure = 0;
  for (let i = 0; i < darkness.length; i++) if (digit.mask[i] && (darkness[i] as number) > levels.strong) sure++;
  return { darkness, levels, lightInk, digit, sure, paper };
}

/** A mask's typical stroke width in pixels: its area over half its perimeter (a long stroke's length). */
function strokeWidth(mask: Uint8Array, width: number, height: number): number {
  let [area, edge] = [0, 0];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!mask[i]) continue;
      area++;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) edge++;
      else if (!mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width]) edge++;
    }
  return edge > 0 ? (2 * area) / edge : 0;
}

/**
 * How well a reading's ink stands out of its paper: a stroke's core over the faint-ink threshold (set
 * by the paper's noise). The wrong reading divides by the ink's tone, which magnifies noise: it scores low.
 */
const separation = (reading: InkReading) => reading.levels.full / reading.levels.weak;
/** A reading this many times better separated wins. */
const SEPARATED = 1.3;

/** How far apart the two readings' paper levels must be for the brighter one to win outright. */
const CLEAR = 0.15;

/** The ink reading with the minority of sure ink, or undefined when neither reading finds any. */
export function readInk(image: GrayImage): InkReading | undefined {
  const inverted = { ...image, data: image.data.map((v) => 1 - v) };
  // Rule 1 needs only the paper levels: when it decides, the other reading is read only if this one fails.
  const [darkPaper, lightPaper] = [paperLevel(image), paperLevel(inverted)];
  let chosen: InkReading | undefined;
  if (Math.abs(darkPaper - lightPaper) > CLEAR) {
    const lightFirst = lightPaper > darkPaper;
    chosen = read(image, lightFirst) ?? read(image, !lightFirst);
  } else {
    const dark = read(image, false);
    const light = read(image, true);
    chosen =
      !dark || !light
        ? (dark ?? light)
        : separation(light) > SEPARATED * separation(dark)
          ? light
          : separation(dark) > SEPARATED * separation(light)
            ? dark
            : light.sure < dark.sure
              ? light
              : dark;
  }
  if (!chosen) return undefined;
  // Read again with the paper following sharp shadows: a closing wider than the digit's strokes.
  const refined = read(
    image,
    chosen.lightInk,
    Math.ceil(strokeWidth(chosen.digit.mask, image.width, image.height)) + 1,
  );
  return refined ?? chosen;
}
