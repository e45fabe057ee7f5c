/**
 * Which way round the ink is — dark on light paper, or chalk-light on a dark board — decided from the
 * data: ink is the minority. Both readings are tried (the paper's light removed each way round, then
 * thresholded); the one that finds less sure ink is right. The wrong reading takes the paper around
 * every stroke for ink (and a whole dark page for ink on a "black" background), so it always finds more.
 * Unlike the mean or the border's tone, this holds under vignettes, shadows and a desk in the frame.
 */
import { inkDarkness } from './background.ts';
import type { GrayImage } from './grayscale.ts';
import { type InkLevels, inkLevels } from './threshold.ts';

/** Ink darkness relative to the local paper, its levels, and which way round the ink was. */
export interface InkReading {
  darkness: Float32Array;
  levels: InkLevels;
  lightInk: boolean;
}

function read(image: GrayImage, lightInk: boolean): (InkReading & { sure: number }) | undefined {
  const darkness = inkDarkness(lightInk ? { ...image, data: image.data.map((v) => 1 - v) } : image);
  const levels = inkLevels(darkness);
  if (!levels) return undefined;
  let sure = 0;
  for (let i = 0; i < darkness.length; i++) if ((darkness[i] as number) > levels.strong) sure++;
  return { darkness, levels, lightInk, sure };
}

/** The ink reading with the minority of sure ink, or undefined when neither reading finds any. */
export function readInk(image: GrayImage): InkReading | undefined {
  const dark = read(image, false);
  const light = read(image, true);
  if (!dark || !light) return dark ?? light;
  return light.sure < dark.sure ? light : dark;
}
