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
import { inkDarkness, type PaperGrid, paperGrids, type Region } from './background.ts';
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

/** One way round of the picture: the image with its ink dark (made when first read), and its paper grid. */
interface Side {
  image: () => GrayImage;
  grid: PaperGrid;
  lightInk: boolean;
}

function read(
  side: Side,
  shadows?: { radius: number; region: Region; plain: Float32Array },
): (InkReading & { sure: number; paper: number }) | undefined {
  const { grid, lightInk } = side;
  const image = side.image();
  const { darkness, paper, shadowed } = inkDarkness(image, { grid, ...shadows });
  if (shadows && shadowed === 0) return undefined; // no shadow's edge: the plain reading stands as it was
  const levels = inkLevels(darkness);
  if (!levels) return undefined;
  const digit = digitMask(darkness, image.width, image.height, levels);
  if (!digit) return undefined;
  let sure = 0;
  for (let i = 0; i < darkness.length; i++) if (digit.mask[i] && (darkness[i] as number) > levels.strong) sure++;
  return { darkness, levels, lightInk, digit, sure, paper };
}

/** The image with light and dark swapped. */
function inverse(image: GrayImage): GrayImage {
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 1 - (image.data[i] as number);
  return { ...image, data };
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
  const grids = paperGrids(image);
  let inverted: GrayImage | undefined;
  const darkSide: Side = { image: () => image, grid: grids.dark, lightInk: false };
  const lightSide: Side = { image: () => (inverted ??= inverse(image)), grid: grids.light, lightInk: true };
  // Rule 1 needs only the paper levels: when it decides, the other reading is read only if this one fails.
  const [darkPaper, lightPaper] = [darkSide.grid.level, lightSide.grid.level];
  let chosen: InkReading | undefined;
  if (Math.abs(darkPaper - lightPaper) > CLEAR) {
    const [first, second] = lightPaper > darkPaper ? [lightSide, darkSide] : [darkSide, lightSide];
    chosen = read(first) ?? read(second);
  } else {
    const dark = read(darkSide);
    const light = read(lightSide);
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
  // Read again with the paper following sharp shadows: a closing wider than the digit's strokes, only
  // around the marks the first reading chose (a shadow's edge taken for ink is among them). Elsewhere
  // the paper stays the blocks' own, as the first reading had it.
  const radius = Math.ceil(strokeWidth(chosen.digit.mask, image.width, image.height)) + 1;
  const { digit } = chosen;
  const margin = 2 * radius + 2;
  const region = {
    minX: Math.max(0, digit.minX - margin),
    minY: Math.max(0, digit.minY - margin),
    maxX: Math.min(image.width - 1, digit.maxX + margin),
    maxY: Math.min(image.height - 1, digit.maxY + margin),
  };
  const refined = read(chosen.lightInk ? lightSide : darkSide, { radius, region, plain: chosen.darkness });
  return refined ?? chosen;
}
