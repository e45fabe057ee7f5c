/**
 * Fine-tune a served model on the user's own drawn digits: the CLI's Trainer (injected runtime) starts
 * from the served weights and takes a few AdamW steps on batches that mix the user's samples with MNIST
 * training images (so it does not forget MNIST), then the result goes through the same deployable/validation
 * path as /train. Reports the answers on the samples and the MNIST test accuracy before and after.
 */
import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD, NUM_CLASSES } from '../../../core/contract.ts';
import { type Dataset, normalize } from '../../../core/data/dataset.ts';
import { batchedLogitsOf } from '../../../core/deploy/validate.ts';
import { ZOO } from '../../../core/model/zoo/index.ts';
import type { OrtRuntime } from '../../../core/ort-runtime.ts';
import { Rng } from '../../../core/random.ts';
import { argmax } from '../../../core/softmax.ts';
import { adamw } from '../../../core/training/optim/index.ts';
import { Trainer } from '../../../core/training/trainer-core.ts';
import { deployable } from '../train/deploy.ts';
import { trainableFromDeployable } from './weights.ts';

/** One drawn digit: 784 raw intensities in [0,1] (MNIST-preprocessed) and the label the user gave. */
export interface Sample {
  pixels: Float32Array;
  label: number;
}

export interface Snapshot {
  /** The model's answer for each sample. */
  answers: number[];
  /** Accuracy (%) on the MNIST test images. */
  mnistAccuracy: number;
}

export interface FineTuneOptions {
  steps: number;
  /** User samples per batch (cycled), the rest of the batch MNIST images. */
  userPerBatch: number;
  batchSize: number;
  lr: number;
  seed: number;
}

export const FINE_TUNE_DEFAULTS: FineTuneOptions = { steps: 30, userPerBatch: 8, batchSize: 32, lr: 1e-3, seed: 0 };

export interface FineTuned {
  model: string;
  bytes: Uint8Array;
  before: Snapshot;
  after: Snapshot;
  maxLogitDifference: number;
}

const answersOf = (logits: Float32Array, count: number) =>
  Array.from({ length: count }, (_, i) => argmax(logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)));

/**
 * A deployable model's (raw pixels in) answers on the samples and its accuracy on `test`, on one session.
 * `mnistAccuracy`, when given, is the accuracy already measured on `test` (validation reads the same images
 * with the same model), so only the samples are read.
 */
async function snapshot(
  runtime: OrtRuntime,
  bytes: Uint8Array,
  samples: Sample[],
  test: Dataset,
  mnistAccuracy?: number,
): Promise<Snapshot> {
  const userRaw = new Float32Array(samples.length * IMAGE_PIXELS);
  samples.forEach((s, i) => {
    userRaw.set(s.pixels, i * IMAGE_PIXELS);
  });
  const sets = [{ images: userRaw, count: samples.length }];
  if (mnistAccuracy === undefined)
    sets.push({ images: Float32Array.from(test.images, (v) => v / 255), count: test.count });
  const [user, mnist] = await batchedLogitsOf(runtime, bytes, sets, { device: 'wasm' });
  const answers = answersOf(user as Float32Array, samples.length);
  if (mnistAccuracy !== undefined) return { answers, mnistAccuracy };
  const hits = answersOf(mnist as Float32Array, test.count).filter((a, i) => a === test.labels[i]).length;
  return { answers, mnistAccuracy: (100 * hits) / test.count };
}

export async function fineTune(
  runtime: OrtRuntime,
  served: Uint8Array,
  samples: Sample[],
  data: { train: Dataset; test: Dataset },
  options: FineTuneOptions = FINE_TUNE_DEFAULTS,
  onStep?: (step: number, loss: number) => void,
): Promise<FineTuned> {
  if (samples.length === 0) throw new Error('draw and label at least one digit first');
  const { name, weights } = trainableFromDeployable(served);
  const before = await snapshot(runtime, served, samples, data.test);
  const trainer = await Trainer.create(ZOO[name].build(), {
    runtime,
    device: 'wasm',
    optimizer: adamw({ weightDecay: 0 }),
    weights,
    seed: options.seed,
  });
  const userNormalized = samples.map((s) => Float32Array.from(s.pixels, (v) => (v - MNIST_MEAN) / MNIST_STD));
  const mnistNormalized = normalize(data.train.images);
  const rng = new Rng(options.seed);
  try {
    for (let step = 0; step < options.steps; step++) {
      const images = new Float32Array(options.batchSize * IMAGE_PIXELS);
      const labels: number[] = [];
      for (let k = 0; k < options.batchSize; k++) {
        if (k < options.userPerBatch) {
          const i = (step * options.userPerBatch + k) % samples.length;
          images.set(userNormalized[i] as Float32Array, k * IMAGE_PIXELS);
          labels.push((samples[i] as Sample).label);
        } else {
          const i = rng.int(data.train.count);
          images.set(mnistNormalized.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), k * IMAGE_PIXELS);
          labels.push(data.train.labels[i] as number);
        }
      }
      const { loss } = await trainer.step(images, labels, options.lr);
      onStep?.(step + 1, loss);
    }
    const deployed = await deployable(
      runtime,
      name,
      trainer.weights(),
      {
        training_recipe: `fine-tuned in the browser: ${options.steps} AdamW steps (lr ${options.lr}) on ${samples.length} drawn digits mixed with MNIST (${options.userPerBatch} of ${options.batchSize} per batch)`,
      },
      data.test,
    );
    // The validation just read the test images with this model: its accuracy is the after-snapshot's.
    const after = await snapshot(runtime, deployed.bytes, samples, data.test, deployed.accuracy);
    return { model: name, bytes: deployed.bytes, before, after, maxLogitDifference: deployed.maxLogitDifference };
  } finally {
    await trainer.release();
  }
}
