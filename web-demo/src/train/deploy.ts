/**
 * Trained weights → the deployable model `npm run export` writes, built and validated by the same code
 * (core/deploy/validate.ts), on onnxruntime-web.
 */

import type { Dataset } from '../../../core/data/dataset.ts';
import { METADATA_KEYS } from '../../../core/deploy/metadata.ts';
import { buildDeployable, ValidationError, validateDeployable } from '../../../core/deploy/validate.ts';
import type { Weights } from '../../../core/model/initialize.ts';
import type { ModelName } from '../../../core/model/zoo/index.ts';
import type { OrtRuntime } from '../../../core/ort-runtime.ts';
import { encodeModel } from '../../../onnx/codec.ts';

export interface Deployed {
  bytes: Uint8Array;
  accuracy: number;
  maxLogitDifference: number;
  disagreements: number;
}

/** Build, validate and serialize; throws (nothing offered for download) when validation fails. */
export async function deployable(
  runtime: OrtRuntime,
  name: ModelName,
  weights: Weights,
  extra: Record<string, string>,
  test: Dataset,
): Promise<Deployed> {
  const built = buildDeployable(name, weights, { name, version: '1', producer: 'mnist-onnx-cnn (browser)', extra });
  const { accuracy, maxLogitDifference, disagreements } = await validateDeployable(
    runtime,
    { device: 'wasm' },
    built,
    test,
  ).catch((error: unknown) => {
    throw error instanceof ValidationError ? new Error(`validation failed: ${error.message}`) : error;
  });
  built.model.metadata_props?.push({ key: METADATA_KEYS.testAccuracy, value: accuracy.toFixed(2) });
  return { bytes: encodeModel(built.model), accuracy, maxLogitDifference, disagreements };
}
