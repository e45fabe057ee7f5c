/**
 * The native steps that run between native Conv gradients (native/routing.cc) against direct loops: max-pool
 * routing to each window's first maximum (ties, leftover rows and columns, 2×2 and 3×3), ReLU, the sum of
 * two contributions, a dropout's product, a Conv's bias gradient, a stride-1 average pool's gradient
 * (scattered by its windows here, gathered there) and a BatchNorm's input and scale gradients (the formula
 * in float64). Skipped where the addon isn't built.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/random.ts';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';

const kernels = nativeKernels();

/** dX of a k×k, stride-k max-pool by the definition: the first (row-major) maximum of each window. */
function poolReference(x: Float32Array, dY: Float32Array, dims: number[], k: number): Float32Array {
  const [n, c, h, w] = dims as [number, number, number, number];
  const [ho, wo] = [Math.floor(h / k), Math.floor(w / k)];
  const dx = new Float32Array(x.length);
  for (let plane = 0; plane < n * c; plane++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++) {
        let best = -1;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const at = plane * h * w + (oy * k + i) * w + ox * k + j;
            if (best < 0 || (x[at] as number) > (x[best] as number)) best = at;
          }
        dx[best] = dY[(plane * ho + oy) * wo + ox] as number;
      }
  return dx;
}

/** dX of an average pool (divisor kh·kw) by scattering each window's dY/(kh·kw) over its taps. */
function averageReference(
  dY: Float32Array,
  dims: number[],
  kernel: number[],
  strides: number[],
  pads: number[],
): Float64Array {
  const [n, c, h, w] = dims as [number, number, number, number];
  const [kh, kw] = kernel as [number, number];
  const [sh, sw] = strides as [number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const [ho, wo] = [Math.floor((h + pt + pb - kh) / sh) + 1, Math.floor((w + pl + pr - kw) / sw) + 1];
  const dx = new Float64Array(n * c * h * w);
  for (let plane = 0; plane < n * c; plane++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const [y, x] = [oy * sh - pt + i, ox * sw - pl + j];
            if (y < 0 || y >= h || x < 0 || x >= w) continue;
            const at = (plane * h + y) * w + x;
            dx[at] = (dx[at] as number) + (dY[(plane * ho + oy) * wo + ox] as number) / (kh * kw);
          }
  return dx;
}

describe.skipIf(!kernels)(`native routing steps (${nativeKernelsStatus()})`, () => {
  const rng = new Rng(7);
  const random = (length: number) => Float32Array.from({ length }, () => rng.uniform(-1, 1));

  for (const [dims, k] of [
    [[2, 3, 8, 8], 2],
    [[1, 2, 7, 9], 2],
    [[2, 2, 6, 22], 2], // 11 windows a row: a whole vector of 8 and a part one
    [[1, 1, 3, 35], 2],
    [[2, 1, 9, 10], 3],
  ] as [number[], number][]) {
    it(`max-pool ${k}×${k} on ${dims.join('×')}: first maxima, ties included, leftovers zero`, () => {
      // Rounded to a few levels, so that windows tie (MNIST's flat background does).
      const x = random(dims.reduce((a, b) => a * b)).map((v) => Math.round(v * 2) / 2);
      const [n, c, h, w] = dims as [number, number, number, number];
      const dY = random(n * c * Math.floor(h / k) * Math.floor(w / k));
      const dx = new Float32Array(x.length).fill(Number.NaN);
      kernels?.maxPoolGradient(x, dY, dx, dims, k);
      const expected = poolReference(x, dY, dims, k);
      expect([...dx]).toEqual([...expected]);
      // As a ReLU's output: the ReLU's mask folded in (windows of zeros route nothing).
      const y = x.map((v) => Math.max(0, v));
      kernels?.maxPoolGradient(y, dY, dx, dims, k, true);
      expect([...dx]).toEqual([...poolReference(y, dY, dims, k)].map((g, i) => ((y[i] as number) > 0 ? g : 0)));
    });
  }

  it('ReLU, sum and bias gradients', () => {
    const [n, c, p] = [3, 5, 37];
    const y = random(n * c * p).map((v) => Math.max(0, v));
    const dY = random(n * c * p);
    const out = new Float32Array(n * c * p);
    kernels?.reluGradient(y, dY, out);
    expect([...out]).toEqual([...dY].map((d, i) => ((y[i] as number) > 0 ? d : 0)));
    kernels?.add(y, dY, out);
    expect([...out]).toEqual([...dY].map((d, i) => Math.fround(d + (y[i] as number))));
    const db = new Float32Array(c);
    kernels?.biasGradient(dY, db, n, c, p);
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let i = 0; i < n; i++) for (let q = 0; q < p; q++) sum += dY[(i * c + ch) * p + q] as number;
      expect(db[ch]).toBeCloseTo(sum, 4);
    }
  });

  const poolCases: [dims: number[], kernel: number[], strides: number[], pads: number[], why: string][] = [
    [[64, 20, 4, 4], [3, 3], [1, 1], [1, 1, 1, 1], "inception's joins: same size, flat masked runs"],
    [[3, 10, 12, 12], [3, 3], [1, 1], [1, 1, 1, 1], 'same size'],
    [[2, 3, 9, 7], [5, 3], [1, 1], [2, 1, 2, 1], 'same size, non-square'],
    [[2, 2, 6, 5], [3, 3], [1, 1], [2, 0, 0, 2], 'same size, lopsided pads'],
    [[2, 3, 7, 8], [2, 2], [1, 1], [0, 0, 0, 0], 'smaller output: the row-by-row path'],
    [[1, 2, 5, 6], [3, 2], [1, 1], [1, 0, 0, 1], 'smaller output, padded'],
    [[2, 4, 12, 12], [2, 2], [2, 2], [0, 0, 0, 0], "densenet's transitions: stride 2"],
    [[2, 3, 9, 11], [2, 2], [2, 2], [0, 0, 0, 0], 'stride 2, a leftover row and column'],
    [[1, 2, 10, 9], [3, 3], [2, 3], [1, 0, 1, 2], 'strides 2, 3, padded'],
    [[1, 1, 1, 1], [1, 1], [1, 1], [0, 0, 0, 0], '1×1'],
  ];
  for (const [dims, kernel, strides, pads, why] of poolCases) {
    it(`average-pool gradient, ${dims.join('×')}, ${kernel.join('×')} window, strides ${strides.join(',')}, pads ${pads.join(',')} (${why})`, () => {
      const [n, c, h, w] = dims as [number, number, number, number];
      const ho = Math.floor(
        (h + (pads[0] as number) + (pads[2] as number) - (kernel[0] as number)) / (strides[0] as number) + 1,
      );
      const wo = Math.floor(
        (w + (pads[1] as number) + (pads[3] as number) - (kernel[1] as number)) / (strides[1] as number) + 1,
      );
      const dY = random(n * c * ho * wo);
      const dx = new Float32Array(n * c * h * w).fill(Number.NaN); // every element must be written
      kernels?.avgPoolGradient(dY, dx, dims, kernel, strides, pads);
      const expected = averageReference(dY, dims, kernel, strides, pads);
      for (const [i, v] of dx.entries())
        expect(Math.abs(v - (expected[i] as number)), `element ${i}`).toBeLessThan(1e-6);
    });
  }

  // The second shape is big enough for the channels to be split over threads (~64 K elements a part).
  const bnShapes: [n: number, c: number, p: number, threads: number][] = [
    [3, 5, 7 * 6, 1],
    [16, 9, 1000, 3],
  ];
  for (const statistics of [true, false])
    for (const [n, c, p, threads] of bnShapes) {
      it(`BatchNorm input and scale gradients, ${statistics ? 'through the batch statistics' : 'fixed statistics'}, [${n}, ${c}, ${p}] on ${threads} thread(s)`, () => {
        const x = random(n * c * p).map((v) => 2 * v + 0.5);
        const dY = random(n * c * p);
        const gamma = random(c).map((v) => v + 1.5);
        const mean = random(c);
        const invStd = random(c).map((v) => v + 1.25);
        const dx = new Float32Array(n * c * p).fill(Number.NaN); // every element must be written
        const dgamma = new Float32Array(c).fill(Number.NaN);
        kernels?.batchNormInputGradient(x, gamma, mean, invStd, dY, dx, [n, c, p], statistics, threads);
        kernels?.batchNormScaleGradient(x, mean, invStd, dY, dgamma, [n, c, p], threads);
        if (threads > 1) {
          // The split changes nothing: the same sums in the same order per channel.
          const [dx1, dgamma1] = [new Float32Array(dx.length), new Float32Array(c)];
          kernels?.batchNormInputGradient(x, gamma, mean, invStd, dY, dx1, [n, c, p], statistics, 1);
          kernels?.batchNormScaleGradient(x, mean, invStd, dY, dgamma1, [n, c, p], 1);
          expect(dx1).toEqual(dx);
          expect(dgamma1).toEqual(dgamma);
        }
        const at = (i: number, ch: number, k: number) => (i * c + ch) * p + k;
        for (let ch = 0; ch < c; ch++) {
          const xHat = (i: number, k: number) =>
            ((x[at(i, ch, k)] as number) - (mean[ch] as number)) * (invStd[ch] as number);
          let [sumDy, sumDyXHat] = [0, 0];
          for (let i = 0; i < n; i++)
            for (let k = 0; k < p; k++) {
              sumDy += dY[at(i, ch, k)] as number;
              sumDyXHat += (dY[at(i, ch, k)] as number) * xHat(i, k);
            }
          // float32 sums over N·P terms (16,000 in the big shape): relative, not absolute, agreement
          expect(Math.abs((dgamma[ch] as number) - sumDyXHat)).toBeLessThan(1e-5 * Math.max(1, Math.abs(sumDyXHat)));
          const [meanDy, meanDyXHat] = statistics ? [sumDy / (n * p), sumDyXHat / (n * p)] : [0, 0];
          let worst = 0; // relative to max(1, |expected|); NaN (an element left unwritten) fails too
          for (let i = 0; i < n; i++)
            for (let k = 0; k < p; k++) {
              const scale = (gamma[ch] as number) * (invStd[ch] as number);
              const expected = scale * ((dY[at(i, ch, k)] as number) - meanDy - xHat(i, k) * meanDyXHat);
              const error = Math.abs((dx[at(i, ch, k)] as number) - expected) / Math.max(1, Math.abs(expected));
              worst = Number.isNaN(error) ? Number.NaN : Math.max(worst, error);
            }
          expect(worst, `channel ${ch}`).toBeLessThan(2e-5);
        }
      });
    }

  it('a gradient times a same-shaped factor (a dropout mask)', () => {
    const [a, b] = [random(37), random(37)];
    const out = new Float32Array(37);
    kernels?.multiply(a, b, out);
    expect([...out]).toEqual([...a].map((v, i) => Math.fround(v * (b[i] as number))));
  });

  it('average-pool gradient: an infinite dY spreads only over its own windows (no 0·inf NaN elsewhere)', () => {
    const dY = new Float32Array(16);
    dY[3] = Number.POSITIVE_INFINITY; // row 0, the last column
    const dx = new Float32Array(16);
    kernels?.avgPoolGradient(dY, dx, [1, 1, 4, 4], [3, 3], [1, 1], [1, 1, 1, 1]);
    const covered = (i: number) => Math.floor(i / 4) <= 1 && i % 4 >= 2;
    for (const [i, v] of dx.entries()) expect(v, `element ${i}`).toBe(covered(i) ? Number.POSITIVE_INFINITY : 0);
  });

  it('rejects shapes whose element counts overflow, as errors (no wrapped length check, no abort)', () => {
    const none = () => new Float32Array(0);
    const huge = 2 ** 30;
    expect(() => kernels?.avgPoolGradient(none(), none(), [huge, huge, 4, 4], [1, 1], [1, 1], [0, 0, 0, 0])).toThrow(
      /wrong lengths/,
    );
    expect(() => kernels?.maxPoolGradient(none(), none(), none(), [huge, huge, 4, 4], 2)).toThrow(/wrong lengths/);
    expect(() => kernels?.biasGradient(none(), none(), huge, huge, 16)).toThrow(/wrong lengths/);
    // No images: nothing to do, however large the planes claim to be.
    expect(() =>
      kernels?.avgPoolGradient(none(), none(), [0, 1, 2 ** 31 - 1, 2 ** 31 - 1], [1, 1], [1, 1], [0, 0, 0, 0]),
    ).not.toThrow();
  });

  it('rejects a pad as large as the window and arrays of the wrong length', () => {
    expect(() =>
      kernels?.avgPoolGradient(new Float32Array(16), new Float32Array(16), [1, 1, 4, 4], [3, 3], [1, 1], [3, 0, 0, 0]),
    ).toThrow(/pad smaller/);
    expect(() =>
      kernels?.avgPoolGradient(new Float32Array(15), new Float32Array(16), [1, 1, 4, 4], [3, 3], [1, 1], [1, 1, 1, 1]),
    ).toThrow(/wrong lengths/);
  });

  it('rejects arrays of the wrong length', () => {
    expect(() => kernels?.reluGradient(new Float32Array(4), new Float32Array(4), new Float32Array(3))).toThrow(
      /unequal lengths/,
    );
    expect(() =>
      kernels?.maxPoolGradient(new Float32Array(16), new Float32Array(3), new Float32Array(16), [1, 1, 4, 4], 2),
    ).toThrow(/wrong lengths/);
  });
});
