/**
 * The native Conv input-gradient kernel (dX from dY and W) against a float64 direct sum — every (output
 * position, tap) pair scattered back to the input element it read — on small shapes: strides, uneven and
 * wide pads, dilation, 1×1, odd sizes and channel counts, more than one channel block, batch 1.
 * Skipped where the addon isn't built.
 */
import { describe, expect, it } from 'vitest';
import type { ConvGeometry } from '../core/autodiff/rules/conv-weight-gradient.ts';
import { Rng } from '../core/random.ts';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';
import { convGeometry as geometry } from './helpers/conv-geometry.ts';

const kernels = nativeKernels();

/** dX by the definition (the forward's reads, scattered back), in float64. */
function reference(dY: Float32Array, w: Float32Array, geo: ConvGeometry, n: number): Float64Array {
  const [c, h, wd] = geo.input;
  const [m, ho, wo] = geo.output;
  const [kh, kw] = geo.kernel;
  const dx = new Float64Array(n * c * h * wd);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < m; o++)
      for (let y = 0; y < ho; y++)
        for (let z = 0; z < wo; z++) {
          const d = dY[((b * m + o) * ho + y) * wo + z] as number;
          for (let ch = 0; ch < c; ch++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const row = y * geo.strides[0] + i * geo.dilations[0] - geo.pads[0];
                const col = z * geo.strides[1] + j * geo.dilations[1] - geo.pads[1];
                if (row < 0 || row >= h || col < 0 || col >= wd) continue;
                const at = ((b * c + ch) * h + row) * wd + col;
                dx[at] = (dx[at] as number) + d * (w[((o * c + ch) * kh + i) * kw + j] as number);
              }
        }
  return dx;
}

const CASES: [string, ConvGeometry, number][] = [
  ['3×3, batch 3', geometry([2, 9, 8], 5, [3, 3]), 3],
  ['3×3 pad 1 (same size), 16 channels, batch 1', geometry([16, 12, 12], 16, [3, 3], { pads: [1, 1, 1, 1] }), 1],
  ['5×5, 10 → 20 channels on 12×12 (cnn conv2)', geometry([10, 12, 12], 20, [5, 5]), 2],
  [
    'stride 2, padding, 3×2 kernel, dilation 2 across',
    geometry([3, 11, 10], 6, [3, 2], { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 2] }),
    2,
  ],
  ['uneven padding, stride 3 by 2', geometry([4, 13, 9], 3, [5, 3], { strides: [3, 2], pads: [2, 0, 1, 1] }), 2],
  ['trailing pad wider than the kernel', geometry([3, 6, 5], 4, [2, 2], { pads: [0, 1, 3, 3] }), 2],
  ['1×1, 70 output and 19 input channels (three channel blocks)', geometry([19, 5, 5], 70, [1, 1]), 2],
  ['1×1 stride 2 on odd sizes', geometry([5, 7, 9], 3, [1, 1], { strides: [2, 2] }), 3],
  ['3×3 pad 1 on 1×1 maps (only the centre tap reads)', geometry([9, 1, 1], 4, [3, 3], { pads: [1, 1, 1, 1] }), 5],
  // 16, 32, 40 channels: the channels-last or the scatter layout (strides, dilation, pads, a 28-wide row).
  ['32 channels, stride 2, pad 1', geometry([32, 7, 9], 5, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }), 2],
  ['40 channels (a part vector), dilation 2', geometry([40, 6, 5], 3, [2, 3], { dilations: [2, 1] }), 2],
  ['16 channels, 5×5 pad 2 on 3×28', geometry([16, 3, 28], 4, [5, 5], { pads: [2, 2, 2, 2] }), 1],
  [
    '16 channels, 5×5 pad 0, stride 3, uneven pads',
    geometry([16, 13, 11], 6, [5, 5], { strides: [3, 1], pads: [0, 2, 1, 0] }),
    2,
  ],
  ['64 → 70 channels, 1×1', geometry([70, 3, 3], 64, [1, 1]), 2],
  // Channel counts in whole vectors where the scatter layout does fewer FMAs (conv_input_scatter.cc).
  ['scatter: 16 → 32 channels, 5×5 on 12×12 (resnet conv2)', geometry([16, 12, 12], 32, [5, 5]), 2],
  [
    'scatter: 32 channels, 5×5 stride 2 pad 2',
    geometry([32, 12, 11], 7, [5, 5], { strides: [2, 2], pads: [2, 2, 2, 2] }),
    3,
  ],
  [
    'scatter: 16 channels, dilation 2, stride 3 by 2, uneven pads',
    geometry([16, 13, 11], 5, [3, 2], { strides: [3, 2], pads: [2, 0, 1, 1], dilations: [2, 2] }),
    2,
  ],
  [
    'scatter: 32 channels, trailing pads as wide as the kernel reaches',
    geometry([32, 6, 5], 3, [3, 3], { strides: [2, 2], pads: [0, 1, 2, 2] }),
    2,
  ],
  // Wider trailing pads make the scatter plane outgrow the input: the correlation layouts, strided.
  [
    '32 channels, stride 2, trailing pad wider than the kernel',
    geometry([32, 9, 7], 3, [3, 3], { strides: [2, 2], pads: [1, 1, 3, 3] }),
    2,
  ],
  ['scatter: 32 → 32 channels, 1×1 on 4×4 (a small pixel tile)', geometry([32, 4, 4], 32, [1, 1]), 3],
  ['scatter: 48 channels, 4×4 kernel to a 1×1 output', geometry([48, 4, 4], 40, [4, 4]), 2],
  // Channel counts in part vectors: a kernel row's columns (dw = 1) or a tap's (dw > 1) padded to vectors.
  ['scatter, part vectors: 88 → 20 channels, 5×5 on 12×12 (inception)', geometry([88, 12, 12], 20, [5, 5]), 1],
  [
    'scatter, part vectors: 10 channels, 5×5 stride 2 pad 2',
    geometry([10, 13, 11], 6, [5, 5], { strides: [2, 2], pads: [2, 2, 2, 2] }),
    2,
  ],
  [
    'scatter, part vectors: 10 channels, dilation 2 across (a run per tap), stride 2',
    geometry([10, 13, 12], 6, [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 2] }),
    2,
  ],
  [
    'scatter, part vectors: 3 channels, dilation 2 down, stride 3 by 2',
    geometry([3, 14, 11], 5, [3, 4], { strides: [3, 2], pads: [2, 1, 0, 1], dilations: [2, 1] }),
    2,
  ],
];

describe.skipIf(!kernels)(`native conv input gradient (${nativeKernelsStatus()})`, () => {
  for (const [title, geo, n] of CASES) {
    it(`${title}: matches the float64 sum on 1 and 2 threads`, () => {
      const rng = new Rng(5);
      const dY = Float32Array.from({ length: n * geo.output.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1));
      const size = geo.output[0] * geo.input[0] * geo.kernel[0] * geo.kernel[1];
      const w = Float32Array.from({ length: size }, () => rng.uniform(-1, 1));
      const expected = reference(dY, w, geo, n);
      for (const threads of [1, 2]) {
        const dx = new Float32Array(expected.length).fill(Number.NaN); // every entry must be written
        kernels?.convInputGradient(dY, w, dx, geo, n, threads);
        const scale = Math.max(...expected.map(Math.abs));
        for (let i = 0; i < dx.length; i++)
          expect(Math.abs((dx[i] as number) - (expected[i] as number)) / scale, `dx[${i}]`).toBeLessThan(1e-5);
      }
    });
  }

  it('an infinite dY reaches only the positions its pixel reads (no NaN in the lanes padded past a run)', () => {
    // cnn's conv2: a kernel row's 5 taps × 10 channels fill 50 of 64 lanes; the other 14 fall on the next
    // two columns, which this pixel does not read: Inf · 0 there would be NaN.
    const geo = geometry([10, 12, 12], 20, [5, 5]);
    const rng = new Rng(7);
    const dY = Float32Array.from({ length: 20 * 8 * 8 }, () => rng.uniform(-1, 1));
    dY[3 * 64 + 2 * 8 + 1] = Number.POSITIVE_INFINITY; // channel 3, pixel (2, 1): reads rows 2–6, columns 1–5
    const w = Float32Array.from({ length: 20 * 10 * 25 }, () => rng.uniform(-1, 1));
    const expected = reference(dY, w, geo, 1);
    const dx = new Float32Array(expected.length);
    kernels?.convInputGradient(dY, w, dx, geo, 1, 1);
    let finite = 0;
    for (let i = 0; i < dx.length; i++) {
      const e = expected[i] as number;
      if (!Number.isFinite(e)) continue;
      finite++;
      expect(Math.abs((dx[i] as number) - e), `dx[${i}]`).toBeLessThan(1e-4);
    }
    expect(finite).toBe(10 * 144 - 10 * 25); // every position outside the pixel's 5×5 patch
  });

  it('a made-up output size (strides near 2³¹, no trailing pad could give it) neither crashes nor reads out of bounds', () => {
    // The binding is not given the trailing pads, so it cannot refuse this; the scatter plane it would size
    // overflows int64. The kernel must fall back and give the definition's answer.
    const geo: ConvGeometry = {
      input: [16, 8, 8],
      output: [1, 2, 2],
      kernel: [1, 1],
      strides: [2 ** 31 - 1, 2 ** 29 - 1],
      pads: [0, 0, 0, 0],
      dilations: [1, 1],
    };
    const dY = Float32Array.of(1, 2, 3, 4);
    const w = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const dx = new Float32Array(16 * 64).fill(Number.NaN);
    kernels?.convInputGradient(dY, w, dx, geo, 1, 1);
    expect(Array.from(dx)).toEqual(Array.from(reference(dY, w, geo, 1)));
  });

  it('rejects arrays of the wrong length', () => {
    const geo = geometry([2, 6, 6], 3, [3, 3]);
    expect(() =>
      kernels?.convInputGradient(new Float32Array(48), new Float32Array(54), new Float32Array(71), geo, 1),
    ).toThrow(/dx has the wrong length/);
  });
});
