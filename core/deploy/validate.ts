/**
 * How a trained model becomes a deployable one, on either ORT: the zoo model's inference graph with
 * BatchNorm and input normalization folded and the metadata every export carries, then validated on
 * held-out images: fed raw [0,1] pixels it must give the training-side forward pass's logits (fed
 * normalized pixels) within LOGIT_TOLERANCE, and the same answer for every image. `npm run export`,
 * the /train page and fine-tuning in the draw page all go through here.
 */

import { encodeModel } from '../../onnx/codec.ts';
import type { ModelProto } from '../../onnx/schema.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME, LOGITS_NAME, MNIST_MEAN, MNIST_STD, NUM_CLASSES } from '../contract.ts';
import { type Dataset, normalize } from '../data/dataset.ts';
import { inferenceModel } from '../model/inference-model.ts';
import type { Weights } from '../model/initialize.ts';
import { type ModelName, ZOO } from '../model/zoo/index.ts';
import type { OrtRuntime, SessionSettings, Tensor } from '../ort-runtime.ts';
import { argmax } from '../softmax.ts';
import { makeDeployable } from './deployable.ts';
import { METADATA_KEYS } from './metadata.ts';

/** Max |logit difference| allowed: folding reorders float32 sums, nothing more. */
export const LOGIT_TOLERANCE = 1e-3;

/** Images per run when a model reads a whole test set. */
const CHUNK = 500;

/** A model's logits for the first `count` images (NCHW float32, whatever normalization the model expects). */
export async function batchedLogits(
  runtime: OrtRuntime,
  model: ModelProto | Uint8Array,
  images: Float32Array,
  count: number,
  settings: SessionSettings,
): Promise<Float32Array> {
  const [logits] = await batchedLogitsOf(runtime, model, [{ images, count }], settings);
  return logits as Float32Array;
}

/** batchedLogits for several image sets, on one session (a session is made once, not per set). */
export async function batchedLogitsOf(
  runtime: OrtRuntime,
  model: ModelProto | Uint8Array,
  sets: { images: Float32Array; count: number }[],
  settings: SessionSettings,
): Promise<Float32Array[]> {
  const bytes = model instanceof Uint8Array ? model.slice() : encodeModel(model);
  const { session } = await runtime.createSession(bytes, settings);
  try {
    const results: Float32Array[] = [];
    for (const { images, count } of sets) {
      const out = new Float32Array(count * NUM_CLASSES);
      for (let start = 0; start < count; start += CHUNK) {
        const n = Math.min(CHUNK, count - start);
        // A copy, not a view: onnxruntime-web cannot take a view into a shared or larger buffer.
        const pixels = images.slice(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS);
        const result = await session.run({ [INPUT_NAME]: new runtime.Tensor('float32', pixels, [n, ...IMAGE_SHAPE]) });
        out.set((result[LOGITS_NAME] as Tensor).data as Float32Array, start * NUM_CLASSES);
      }
      results.push(out);
    }
    return results;
  } finally {
    await session.release();
  }
}

/** Percentage of the first `count` rows whose argmax is the label. */
export function accuracyOf(logits: Float32Array, labels: ArrayLike<number>, count: number): number {
  let hits = 0;
  for (let i = 0; i < count; i++)
    if (argmax(logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES)) === labels[i]) hits++;
  return (100 * hits) / count;
}

export interface DeployableMetadata {
  name: string;
  version: string;
  producer: string;
  /** Any other METADATA_KEYS values (recipe, epochs, checkpoint…). */
  extra?: Record<string, string>;
}

/** A zoo model with trained weights → its unfolded inference graph and the deployable model. */
export function buildDeployable(modelName: ModelName, weights: Weights, metadata: DeployableMetadata) {
  const entry = ZOO[modelName];
  const { model: plain } = inferenceModel(entry.build(), { weights });
  const { model, report } = makeDeployable(plain, {
    mean: MNIST_MEAN,
    std: MNIST_STD,
    metadata: {
      [METADATA_KEYS.name]: metadata.name,
      [METADATA_KEYS.version]: metadata.version,
      [METADATA_KEYS.architecture]: `${modelName}: ${entry.title}`,
      [METADATA_KEYS.section]: entry.section,
      [METADATA_KEYS.date]: new Date().toISOString(),
      [METADATA_KEYS.producer]: metadata.producer,
      [METADATA_KEYS.precision]: 'fp32',
      ...metadata.extra,
    },
  });
  return { plain, model, report };
}

export interface Validation {
  /** Test accuracy of the deployable model, in percent. */
  accuracy: number;
  maxLogitDifference: number;
  disagreements: number;
  /** The deployable model's logits on the raw test pixels. */
  logits: Float32Array;
}

export class ValidationError extends Error {
  override name = 'ValidationError';
}

/** Checks the deployable model against the unfolded one on `test`; throws ValidationError on a mismatch. */
export async function validateDeployable(
  runtime: OrtRuntime,
  settings: SessionSettings,
  { plain, model }: { plain: ModelProto; model: ModelProto },
  test: Dataset,
): Promise<Validation> {
  const raw = Float32Array.from(test.images, (v) => v / 255);
  const reference = await batchedLogits(runtime, plain, normalize(test.images), test.count, settings);
  const logits = await batchedLogits(runtime, model, raw, test.count, settings);
  let [maxLogitDifference, disagreements] = [0, 0];
  for (let i = 0; i < test.count; i++) {
    const a = reference.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
    const b = logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
    for (let k = 0; k < NUM_CLASSES; k++)
      maxLogitDifference = Math.max(maxLogitDifference, Math.abs((a[k] as number) - (b[k] as number)));
    if (argmax(a) !== argmax(b)) disagreements++;
  }
  if (maxLogitDifference > LOGIT_TOLERANCE || disagreements > 0)
    throw new ValidationError(
      `the deployable model differs from the training graph (max |Δlogit| ${maxLogitDifference.toExponential(2)}, ${disagreements} different predictions)`,
    );
  return { accuracy: accuracyOf(logits, test.labels, test.count), maxLogitDifference, disagreements, logits };
}
