/**
 * Adversarial digits (core/explain-gradients/adversarial.ts) on the committed cnn fixture and MNIST's first
 * test digits: the smallest ε FGSM and PGD report does flip the model's answer — judged by a separate
 * onnxruntime-node session of the served file — within an L∞ ball of that ε around the clean image, while
 * the bisection's lower bound does not; a targeted attack reaches its target.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, NUM_CLASSES } from '../core/contract.ts';
import { type AttackMethod, fgsm, pgd, smallestEpsilon } from '../core/explain-gradients/adversarial.ts';
import { GradientSession } from '../core/explain-gradients/session.ts';
import { nodeRuntime } from '../node/execution.ts';
import { loadMnist } from '../node/mnist.ts';
import { decodeModel } from '../onnx/codec.ts';

const FIXTURE = 'test/fixtures/models/cnn/1/model.onnx';

describe('FGSM and PGD on the cnn fixture', () => {
  let session: GradientSession;
  let judge: ort.InferenceSession;
  const digits: { pixels: Float32Array; label: number }[] = [];

  /** The served file's answer, from a session that shares nothing with the attack's. */
  const judged = async (image: Float32Array) => {
    const out = await judge.run({ input: new ort.Tensor('float32', image, [1, 1, 28, 28]) });
    const z = Array.from(out.logits?.data as Float32Array);
    return z.indexOf(Math.max(...z));
  };
  const distance = (a: Float32Array, b: Float32Array) =>
    a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

  beforeAll(async () => {
    session = await GradientSession.create(nodeRuntime, decodeModel(readFileSync(FIXTURE)));
    judge = await ort.InferenceSession.create(FIXTURE);
    const test = await loadMnist('test');
    for (let i = 0; i < 3; i++)
      digits.push({
        pixels: Float32Array.from(test.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), (v) => v / 255),
        label: test.labels[i] as number,
      });
  });
  afterAll(async () => {
    await session?.release();
    await judge?.release();
  });

  for (const method of ['fgsm', 'pgd'] as AttackMethod[]) {
    it(`${method}: the smallest ε flips each digit, and a little less does not`, async () => {
      for (const { pixels, label } of digits) {
        expect(await judged(pixels)).toBe(label);
        const found = await smallestEpsilon(session, pixels, { label }, method);
        expect(found, `digit ${label}`).toBeDefined();
        if (!found) continue;
        expect(distance(found.image, pixels)).toBeLessThanOrEqual(found.epsilon + 1e-6);
        expect(found.image.every((v) => v >= 0 && v <= 1)).toBe(true);
        expect(await judged(found.image)).toBe(found.prediction);
        expect(found.prediction).not.toBe(label);
        // The bracket: ε a little smaller (where the search last failed) leaves the answer alone.
        expect(found.epsilon - found.failedAt).toBeLessThanOrEqual((method === 'fgsm' ? 0.01 : 0.5) / 2 ** 8 + 1e-9);
        const attack = method === 'fgsm' ? fgsm : pgd;
        const below = await attack(session, pixels, { label }, found.failedAt);
        expect(await judged(below.image)).toBe(label);
        console.log(
          `${method}: a ${label} reads as ${found.prediction} at ε = ${found.epsilon.toFixed(4)} (${found.gradientRuns} gradient runs)`,
        );
      }
    }, 120_000);
  }

  it('targeted PGD: the first digit (a 7) toward every other digit', async () => {
    const { pixels, label } = digits[0] as { pixels: Float32Array; label: number };
    for (let target = 0; target < NUM_CLASSES; target++) {
      if (target === label) continue;
      const result = await pgd(session, pixels, { label, target }, 0.3, { steps: 40 });
      expect(result.flipped, `toward ${target}`).toBe(true);
      expect(await judged(result.image)).toBe(target);
      expect(distance(result.image, pixels)).toBeLessThanOrEqual(0.3 + 1e-6);
    }
  }, 120_000);
});
