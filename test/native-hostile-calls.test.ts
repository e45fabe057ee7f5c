/**
 * The addon's routing, pooling, BatchNorm, gather and update exports called with hostile numbers — what an
 * outside fuzzing round (2026-12-05) found crashing, hanging or allocating gigabytes: each must give the
 * definition's answer or throw a JS error, at once. Called on the raw addon where the wrapper would not let
 * the arguments through. Skipped where the addon isn't built.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';

const kernels = nativeKernels();
const ADDON = new URL('../native/build/Release/mnist_native.node', import.meta.url).pathname;
const raw = kernels && existsSync(ADDON) ? createRequire(import.meta.url)(ADDON) : undefined;
const BIG = 2 ** 31 - 1;
const none = () => new Float32Array(0);

describe.skipIf(!kernels || !raw)(`native exports under hostile calls (${nativeKernelsStatus()})`, () => {
  it('gather refuses an out that shares memory with its map (writes turned later entries into float bits)', () => {
    const buffer = new ArrayBuffer(36);
    const map = new Int32Array(buffer, 0, 8).fill(0);
    expect(() => raw.gather(Float32Array.of(3), new Float32Array(buffer, 4, 8), map)).toThrow(/share memory/);
    const src = new Float32Array(8);
    expect(() => raw.gather(src, src.subarray(2, 4), Int32Array.of(0, 1))).toThrow(/share memory/);
  });

  it('the update refuses an array of 2³² − 1 states or parts as an error (it aborted the process)', () => {
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1;
    const f = () => new Float32Array(8);
    expect(() => raw.optimizerUpdate(0, Float32Array.of(0.5, 0, 0), 0.1, 1, f(), sparse, [f()], null)).toThrow(
      /at most 1024/,
    );
    expect(() => raw.optimizerUpdate(0, Float32Array.of(0.5, 0, 0), 0.1, 1, f(), [f()], sparse, null)).toThrow(
      /at most 1024/,
    );
  });

  it('empty planes return at once, however many N·C claims (they were 2⁶⁰ turns of a loop)', () => {
    const started = performance.now();
    raw.maxPoolGradient(none(), none(), none(), Int32Array.of(BIG, 2 ** 29, 0, 5, 2, 0));
    raw.maxPoolGradient(none(), none(), none(), Int32Array.of(2 ** 20, 1, BIG, 0, 3, 0));
    const db = new Float32Array(1000).fill(Number.NaN);
    raw.biasGradient(none(), db, Int32Array.of(BIG, 1000, 0));
    expect(Array.from(new Set(db))).toEqual([0]); // a sum over nothing
    const c = () => new Float32Array(1000);
    raw.batchNormInputGradient(none(), c(), c(), c(), none(), none(), Int32Array.of(BIG, 1000, 0, 1, 1));
    const dgamma = new Float32Array(1000).fill(Number.NaN);
    raw.batchNormScaleGradient(none(), c(), c(), none(), dgamma, Int32Array.of(BIG, 1000, 0, 1));
    expect(Array.from(new Set(dgamma))).toEqual([0]);
    expect(performance.now() - started).toBeLessThan(5000); // a hang, not a timing: these took minutes
  });

  it('average pool: a window and pads near 2³¹ over a 1×1 plane cost nothing (16 GiB of scratch before)', () => {
    // Same size (pads summing to the window − 1): dX = dY / (kh·kw), the one window covering the element.
    const k = 2 ** 25 + 1;
    const dx = new Float32Array(1);
    kernels?.avgPoolGradient(
      Float32Array.of(2),
      dx,
      [1, 1, 1, 1],
      [k, k],
      [1, 1],
      [2 ** 24, 2 ** 24, 2 ** 24, 2 ** 24],
    );
    expect((dx[0] as number) / (2 / (k * k))).toBeCloseTo(1, 6);
    // Tall pads and a wide stride: Ho·W rows of scratch (2³² floats) for 65,536-float arrays — refused.
    expect(() =>
      kernels?.avgPoolGradient(
        new Float32Array(65536),
        new Float32Array(65536),
        [1, 1, 1, 65536],
        [65536, 1],
        [1, BIG],
        [65535, 0, 65535, 0],
      ),
    ).toThrow(/too large for these arrays/);
  });

  it('max pool routes a window holding a NaN the same way for 2×2 as for any other size', () => {
    // The first element no later one exceeds: a NaN compares false, so it wins only when it comes first.
    const windows: [number[], number][] = [
      [[1, Number.NaN, 0, 0], 0],
      [[Number.NaN, 1, 2, 3], 0],
      [[0, 1, Number.NaN, 3], 3],
      [[2, 1, 0, Number.NaN], 0],
    ];
    for (const [values, at] of windows) {
      // 17 copies side by side: two full vector steps of 8 windows and a part one (the scalar loop without AVX-512).
      const w = 2 * 17;
      const x = new Float32Array(2 * w);
      for (let k = 0; k < 17; k++) {
        x[2 * k] = values[0] as number;
        x[2 * k + 1] = values[1] as number;
        x[w + 2 * k] = values[2] as number;
        x[w + 2 * k + 1] = values[3] as number;
      }
      const dY = Float32Array.from({ length: 17 }, (_, k) => k + 1);
      const dx = new Float32Array(x.length).fill(Number.NaN);
      kernels?.maxPoolGradient(x, dY, dx, [1, 1, 2, w], 2);
      for (let k = 0; k < 17; k++) {
        const got = [dx[2 * k], dx[2 * k + 1], dx[w + 2 * k], dx[w + 2 * k + 1]];
        expect(got, `${values} window ${k}`).toEqual([0, 1, 2, 3].map((i) => (i === at ? k + 1 : 0)));
      }
    }
  });
});
