/**
 * The native steps that run between native Conv gradients (native/routing.cc) against direct loops: max-pool
 * routing to each window's first maximum (ties, leftover rows and columns, 2×2 and 3×3), ReLU, the sum of
 * two contributions and a Conv's bias gradient. Skipped where the addon isn't built.
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

  it('rejects arrays of the wrong length', () => {
    expect(() => kernels?.reluGradient(new Float32Array(4), new Float32Array(4), new Float32Array(3))).toThrow(
      /unequal lengths/,
    );
    expect(() =>
      kernels?.maxPoolGradient(new Float32Array(16), new Float32Array(3), new Float32Array(16), [1, 1, 4, 4], 2),
    ).toThrow(/wrong lengths/);
  });
});
