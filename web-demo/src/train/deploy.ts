/**
 * Trained weights → the deployable model `npm run export` writes (core/deploy's makeDeployable: BatchNorm
 * and input normalization folded, logits + probabilities, the same metadata keys), validated the way
 * export validates: on held-out images, the deployable model fed raw [0,1] pixels must give the
 * training-side forward pass's logits (fed normalized pixels) within export's tolerance.
 */

import {
  IMAGE_PIXELS,
  IMAGE_SHAPE,
  INPUT_NAME,
  LOGITS_NAME,
  MNIST_MEAN,
  MNIST_STD,
  NUM_CLASSES,
} from '../../../core/contract.ts';
import { type Dataset, normalize } from '../../../core/data/dataset.ts';
import { makeDeployable } from '../../../core/deploy/deployable.ts';
import { METADATA_KEYS } from '../../../core/deploy/metadata.ts';
import { inferenceModel } from '../../../core/model/inference-model.ts';
import type { Weights } from '../../../core/model/initialize.ts';
import { type ModelName, ZOO } from '../../../core/model/zoo/index.ts';
import type { OrtRuntime, Tensor } from '../../../core/ort-runtime.ts';
import { encodeModel } from '../../../onnx/codec.ts';
import type { ModelProto } from '../../../onnx/schema.ts';

/** export's LOGIT_TOLERANCE (export/export-run.ts): folding reorders float32 sums, nothing more. */
export const LOGIT_TOLERANCE = 1e-3;

export interface Deployed {
  bytes: Uint8Array;
  accuracy: number;
  maxLogitDifference: number;
  disagreements: number;
}

async function logitsOf(runtime: OrtRuntime, model: ModelProto, images: Float32Array, count: number) {
  const { session } = await runtime.createSession(encodeModel(model), { device: 'wasm' });
  try {
    const out = new Float32Array(count * NUM_CLASSES);
    for (let start = 0; start < count; start += 500) {
      const n = Math.min(500, count - start);
      const input = new runtime.Tensor('float32', images.slice(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS), [
        n,
        ...IMAGE_SHAPE,
      ]);
      const result = await session.run({ [INPUT_NAME]: input });
      out.set((result[LOGITS_NAME] as Tensor).data as Float32Array, start * NUM_CLASSES);
    }
    return out;
  } finally {
    await session.release();
  }
}

export const argmax = (row: ArrayLike<number>) => {
  let best = 0;
  for (let k = 1; k < row.length; k++) if ((row[k] as number) > (row[best] as number)) best = k;
  return best;
};

/** Build, validate and serialize; throws (nothing offered for download) when validation fails. */
export async function deployable(
  runtime: OrtRuntime,
  name: ModelName,
  weights: Weights,
  metadata: Record<string, string>,
  test: Dataset,
): Promise<Deployed> {
  const entry = ZOO[name];
  const { model: plain } = inferenceModel(entry.build(), { weights });
  const { model } = makeDeployable(plain, {
    mean: MNIST_MEAN,
    std: MNIST_STD,
    metadata: {
      [METADATA_KEYS.name]: name,
      [METADATA_KEYS.version]: '1',
      [METADATA_KEYS.architecture]: `${name}: ${entry.title}`,
      [METADATA_KEYS.section]: entry.section,
      [METADATA_KEYS.date]: new Date().toISOString(),
      [METADATA_KEYS.producer]: 'mnist-onnx-cnn (browser)',
      [METADATA_KEYS.precision]: 'fp32',
      ...metadata,
    },
  });
  const raw = Float32Array.from(test.images, (v) => v / 255);
  const reference = await logitsOf(runtime, plain, normalize(test.images), test.count);
  const exported = await logitsOf(runtime, model, raw, test.count);
  let [maxLogitDifference, disagreements, hits] = [0, 0, 0];
  for (let i = 0; i < test.count; i++) {
    const a = reference.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
    const b = exported.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
    for (let k = 0; k < NUM_CLASSES; k++)
      maxLogitDifference = Math.max(maxLogitDifference, Math.abs((a[k] as number) - (b[k] as number)));
    if (argmax(a) !== argmax(b)) disagreements++;
    if (argmax(b) === test.labels[i]) hits++;
  }
  if (maxLogitDifference > LOGIT_TOLERANCE || disagreements > 0)
    throw new Error(
      `validation failed: the deployable model differs from the training graph (max |Δlogit| ${maxLogitDifference.toExponential(2)}, ${disagreements} different answers)`,
    );
  const accuracy = (100 * hits) / test.count;
  model.metadata_props?.push({ key: METADATA_KEYS.testAccuracy, value: accuracy.toFixed(2) });
  return { bytes: encodeModel(model), accuracy, maxLogitDifference, disagreements };
}
