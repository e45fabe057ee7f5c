/**
 * The digit preprocessing's speed on photo-sized pictures, one core: median milliseconds per picture
 * and per megapixel over seeded photo-like pictures of MNIST digits, beside a calibration — one plain
 * pass over the same RGBA bytes — so a busy machine's numbers can be read for what they are.
 * The bench CLI writes results-preprocess.{md,json}.
 */
import { loadavg } from 'node:os';
import { preprocessRgba } from '../core/digits/digit.ts';
import { loadMnist } from '../node/mnist.ts';
import { photoOf } from '../testkit/photo-digits.ts';
import type { BenchReport } from './report.ts';

export interface PreprocessRow {
  /** Nominal picture height in px (widths vary 0.8–1.25×). */
  side: number;
  megapixels: number;
  msPerImage: number;
  msPerMegapixel: number;
  /** One pass reading every RGBA byte (a luminance sum), ms per megapixel: the floor for any method. */
  calibrationMsPerMegapixel: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

/** The cheapest possible look at every pixel, for scale. */
function onePass(rgba: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < rgba.length; i += 4)
    sum += 0.299 * (rgba[i] as number) + 0.587 * (rgba[i + 1] as number) + 0.114 * (rgba[i + 2] as number);
  return sum;
}

/** Time preprocessRgba on `count` photos ('mixed' conditions) about `side` px high, `rounds` timed passes. */
export async function benchPreprocess(sides: number[], count = 4, rounds = 10): Promise<PreprocessRow[]> {
  const test = await loadMnist('test');
  const rows: PreprocessRow[] = [];
  for (const side of sides) {
    const photos = Array.from({ length: count }, (_, i) =>
      photoOf(test.images.subarray(i * 784, (i + 1) * 784), 'mixed', i + 1, side),
    );
    const time = (f: (p: (typeof photos)[number]) => unknown) => {
      for (const p of photos) f(p); // warm up the JIT
      const perMegapixel: number[] = [];
      for (let r = 0; r < rounds; r++)
        for (const p of photos) {
          const start = performance.now();
          f(p);
          perMegapixel.push((performance.now() - start) / ((p.width * p.height) / 1e6));
        }
      return median(perMegapixel);
    };
    const msPerMegapixel = time((p) => {
      try {
        preprocessRgba(p.rgba, p.width, p.height);
      } catch {} // a photo read as blank costs the same
    });
    const calibrationMsPerMegapixel = time((p) => onePass(p.rgba));
    const megapixels = photos.reduce((s, p) => s + p.width * p.height, 0) / photos.length / 1e6;
    rows.push({ side, megapixels, msPerImage: msPerMegapixel * megapixels, msPerMegapixel, calibrationMsPerMegapixel });
  }
  return rows;
}

/** The benchmark at 300, 1000 and 2000 px, as a report for the bench CLI (results-preprocess.{md,json}). */
export async function benchPreprocessReport(): Promise<BenchReport> {
  const [count, rounds] = [4, 10];
  const rows = await benchPreprocess([300, 1000, 2000], count, rounds);
  const markdown = [
    '# Digit preprocessing (core/digits): photo-like pictures, one core',
    '',
    `Median over ${count} seeded 'mixed' photos × ${rounds} rounds. Load average ${loadavg()[0]?.toFixed(1)} while measuring. Calibration: one plain pass over the RGBA bytes.`,
    '',
    '| picture | megapixels | ms / picture | ms / megapixel | calibration ms / megapixel |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ~${r.side} px high | ${r.megapixels.toFixed(2)} | ${r.msPerImage.toFixed(2)} | ${r.msPerMegapixel.toFixed(2)} | ${r.calibrationMsPerMegapixel.toFixed(2)} |`,
    ),
    '',
  ].join('\n');
  return { kind: 'preprocess', markdown, json: { loadAverage: loadavg()[0], rows } };
}
