/**
 * Whole-model gradient checks for every zoo network on MNIST-like input (a flat background, so the
 * max-pools see ties): per parameter tensor, a few elements and one random direction against float64
 * finite differences. The closing note of the training-engine issue quotes these errors.
 */
import { describe, expect, it } from 'vitest';
import { MODEL_NAMES, ZOO } from '../train/zoo/index.ts';
import { gradientCheck } from './helpers/gradcheck.ts';

/** A blob of ink on a black 28×28 background. */
function digitLike(rng: { next(): number }, length: number): Float64Array {
  const data = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const pixel = i % 784;
    const [y, x] = [Math.floor(pixel / 28), pixel % 28];
    if (Math.hypot(y - 14, x - 13) < 8 && Math.hypot(y - 14, x - 13) > 4) data[i] = 0.5 + 0.5 * rng.next();
  }
  return data;
}

describe('whole-model gradients vs float64 finite differences', () => {
  for (const name of MODEL_NAMES) {
    it(`${name}`, { timeout: 300_000 }, async () => {
      const reports = await gradientCheck(ZOO[name].build(), {
        inputShape: [1, 28, 28],
        batch: 2,
        // Inception's 6 and cnn7's 15 MMAC/image make each float64 forward slow in JS: fewer elements,
        // still one direction per tensor.
        elementsPerTensor: name === 'inception' || name === 'cnn7' ? 1 : 2,
        directions: 1,
        makeInput: digitLike,
      });
      const worst = Math.max(...reports.map((r) => r.maxRelativeError));
      console.log(`${name}: max relative gradient error ${worst.toExponential(2)} over ${reports.length} tensors`);
      expect(worst).toBeLessThan(1e-3);
    });
  }
});
