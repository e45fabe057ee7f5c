/**
 * The PyTorch training fixtures (test/fixtures/torch-training.json, made by make-torch-fixtures.py) for tests
 * that run another path through the same three SGD steps and expect PyTorch's losses and weights.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Weights } from '../../core/model/initialize.ts';
import type { ModelName } from '../../core/model/zoo/index.ts';

export interface TorchTrainingCase {
  model: ModelName;
  optimizer: string;
  labelSmoothing: number;
  losses: number[];
  after: Record<string, { norm: number; samples: [number, number][]; float32Error: number }>;
}

export const torchTrainingCases = (
  JSON.parse(readFileSync(new URL('../fixtures/torch-training.json', import.meta.url), 'utf8')) as {
    cases: TorchTrainingCase[];
  }
).cases;

/** The plain-SGD cases without label smoothing: the ones a momentum-0.5 SGD trainer at lr 0.01 reproduces. */
export const plainSgdCases = () => torchTrainingCases.filter((c) => c.optimizer === 'sgd' && !c.labelSmoothing);

/** Three steps at lr 0.01 give PyTorch's losses, then its weights (sampled, scaled by the tensor's RMS). */
export async function expectThreePytorchSteps(
  trainer: { step(images: Float32Array, labels: number[], lr: number): Promise<{ loss: number }>; weights(): Weights },
  batch: { images: Float32Array; labels: number[] },
  c: TorchTrainingCase,
): Promise<void> {
  for (let s = 0; s < 3; s++) {
    const { loss } = await trainer.step(batch.images, batch.labels, 0.01);
    expect(Math.abs(loss - (c.losses[s] as number)) / (c.losses[s] as number)).toBeLessThan(1e-4);
  }
  const after = trainer.weights();
  for (const [name, golden] of Object.entries(c.after)) {
    const ours = after.get(name) as Float32Array;
    const rms = golden.norm / Math.sqrt(ours.length);
    const tolerance = Math.max(1e-4, 3 * golden.float32Error);
    for (const [i, value] of golden.samples) {
      const error = Math.abs((ours[i] as number) - value) / Math.max(Math.abs(value), rms, 1e-12);
      expect(error, `${name}[${i}] after 3 steps`).toBeLessThan(tolerance);
    }
  }
}
