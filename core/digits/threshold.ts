/**
 * Ink levels from the darkness map's histogram: Otsu's threshold (the split that maximizes the
 * between-class variance), floored above the paper's own noise so that plain paper never turns into ink.
 */

const BINS = 256;

/** Thresholds on ink darkness (0 = the paper, 1 = black). */
export interface InkLevels {
  /** Surely ink: Otsu's threshold, at least `noise` above the paper. */
  strong: number;
  /** Ink if connected to sure ink (hysteresis): catches faint and anti-aliased edges. */
  weak: number;
  /** The darkness that maps to full ink (a typical stroke's core); MNIST's strokes are saturated. */
  full: number;
}

/** Otsu's threshold of a histogram, as a bin index: pixels in bins > index are one class. */
export function otsuBin(histogram: ArrayLike<number>): number {
  let total = 0;
  let sum = 0;
  for (let i = 0; i < histogram.length; i++) {
    total += histogram[i] as number;
    sum += i * (histogram[i] as number);
  }
  let [weight0, sum0, best, bestBin] = [0, 0, -1, 0];
  for (let i = 0; i < histogram.length - 1; i++) {
    weight0 += histogram[i] as number;
    sum0 += i * (histogram[i] as number);
    const weight1 = total - weight0;
    if (weight0 === 0 || weight1 === 0) continue;
    const between = weight0 * weight1 * (sum0 / weight0 - (sum - sum0) / weight1) ** 2;
    if (between > best) [best, bestBin] = [between, i];
  }
  return bestBin;
}

/** The value at quantile q of a histogram over [0, 1]. */
function quantile(histogram: Uint32Array, count: number, q: number): number {
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] as number;
    if (seen > q * count) return (i + 0.5) / histogram.length;
  }
  return 1;
}

/** Smallest contrast with the paper that can count as ink (a pencil line is ≥ 0.2). */
const MIN_INK = 0.1;

/**
 * Ink levels of a darkness map, or undefined when nothing stands out of the paper. The paper's noise
 * is its median absolute deviation (robust: ink is the minority); a stroke must be ≥ 5 of them dark.
 */
export function inkLevels(darkness: Float32Array): InkLevels | undefined {
  const histogram = new Uint32Array(BINS);
  const count = (into: Uint32Array, v: number) => {
    const bin = Math.min(BINS - 1, (v * BINS) | 0);
    into[bin] = (into[bin] as number) + 1;
  };
  for (let i = 0; i < darkness.length; i++) count(histogram, darkness[i] as number);
  const median = quantile(histogram, darkness.length, 0.5);
  const deviations = new Uint32Array(BINS);
  for (let i = 0; i < darkness.length; i++) count(deviations, Math.abs((darkness[i] as number) - median));
  const noise = 1.4826 * quantile(deviations, darkness.length, 0.5);
  const strong = Math.max((otsuBin(histogram) + 1) / BINS, median + 5 * noise, MIN_INK);
  const ink = new Uint32Array(BINS);
  let inkCount = 0;
  for (let i = Math.ceil(strong * BINS); i < BINS; i++) {
    ink[i] = histogram[i] as number;
    inkCount += ink[i] as number;
  }
  if (inkCount === 0) return undefined;
  const full = Math.max(quantile(ink, inkCount, 0.75), strong);
  const weak = Math.max(median + 4 * noise, MIN_INK / 2);
  return { strong, weak, full };
}
