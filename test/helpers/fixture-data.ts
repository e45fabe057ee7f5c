/**
 * The deterministic weights and batch that test/fixtures/make-torch-fixtures.py defines, reproduced
 * bit for bit (integer hashes, float64 arithmetic, one rounding to float32).
 */
import type { Weights } from '../../core/model/initialize.ts';
import type { ParamSpec } from '../../core/model/layers/index.ts';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function mix(i: number, seed: number): number {
  let h = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, 0x85ebca77) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae3d) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Conv/Linear parameters from the hash; BatchNorm parameters and buffers at PyTorch's defaults. */
export function fixtureWeights(params: readonly ParamSpec[]): Weights {
  const weights: Weights = new Map();
  for (const p of params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    if (p.init.kind === 'uniform') {
      const seed = fnv1a(p.name);
      for (let i = 0; i < n; i++) values[i] = ((2 * mix(i, seed)) / 2 ** 32 - 1) * p.init.bound;
    } else {
      values.fill(p.init.value);
    }
    weights.set(p.name, values);
  }
  return weights;
}

/** Eight rings of ink on black, normalized as the tutorial does; labels k mod 10. */
export function fixtureBatch(n = 8): { images: Float32Array; labels: number[] } {
  const images = new Float32Array(n * 784);
  for (let k = 0; k < n; k++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const r2 = (y - 14) ** 2 + (x - 13 + (k % 3)) ** 2;
        const raw = r2 >= 16 && r2 <= 64 ? mix(k * 784 + y * 28 + x, 12345) % 256 : 0;
        images[k * 784 + y * 28 + x] = (raw / 255 - 0.1307) / 0.3081;
      }
  return { images, labels: Array.from({ length: n }, (_, k) => k % 10) };
}
