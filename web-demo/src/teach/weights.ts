/**
 * A served (deployable) model's trainable weights, mapped back to the zoo module's parameter names, so
 * "Teach it your handwriting" can continue training where export left off.
 *
 * export folds the input normalization into the first layer (W' = W/std, b' = b − (mean/std)·ΣW) and
 * BatchNorm into the convolutions. The first fold is undone exactly (W = std·W', b = b' + mean·ΣW');
 * BatchNorm folding loses the split between the conv and its running statistics, so models with
 * BatchNorm (fast-cnn, the cnn7 family, densenet) are not fine-tuned here.
 */

import { MNIST_MEAN, MNIST_STD } from '../../../core/contract.ts';
import { foldedNames } from '../../../core/deploy/fold-normalization.ts';
import { GraphEditor } from '../../../core/deploy/graph-edit.ts';
import { METADATA_KEYS } from '../../../core/deploy/metadata.ts';
import { inspectModule } from '../../../core/model/forward-graph.ts';
import type { Weights } from '../../../core/model/initialize.ts';
import { isModelName, type ModelName, ZOO } from '../../../core/model/zoo/index.ts';
import { decodeModel } from '../../../onnx/codec.ts';
import { sizeOf } from '../../../onnx/tensor.ts';

export interface Trainable {
  name: ModelName;
  weights: Weights;
}

/** Why a served model can't be fine-tuned, as a message for the page. */
export class NotTrainableError extends Error {
  override name = 'NotTrainableError';
}

export function trainableFromDeployable(bytes: Uint8Array): Trainable {
  const model = decodeModel(bytes);
  const meta = new Map((model.metadata_props ?? []).map((p) => [p.key, p.value ?? '']));
  const architecture = (meta.get(METADATA_KEYS.architecture) ?? '').split(':')[0]?.trim() ?? '';
  if (!isModelName(architecture))
    throw new NotTrainableError('the model does not name a zoo architecture in its metadata (not exported by us?)');
  const params = inspectModule(ZOO[architecture].build()).params;
  if (params.some((p) => !p.trainable))
    throw new NotTrainableError(
      `${architecture} has BatchNorm, which export folds into its convolutions: fine-tune a model without it (mlp, cnn, cnn3, inception, resnet…)`,
    );
  const editor = new GraphEditor(model.graph ?? {});
  const weights: Weights = new Map();
  for (const p of params) {
    const plain = editor.floatInitializer(p.name);
    if (plain) {
      weights.set(p.name, Float32Array.from(plain.data as ArrayLike<number>));
      continue;
    }
    // The first layer, with the input normalization folded in (fold-normalization.ts names).
    const weightName = p.name.endsWith('.bias') ? `${p.name.slice(0, -'.bias'.length)}.weight` : p.name;
    const names = foldedNames(weightName);
    const folded = editor.floatInitializer(names.weight);
    const foldedBias = editor.floatInitializer(names.bias);
    if (!folded || !foldedBias) throw new NotTrainableError(`the model has no weights for ${p.name}`);
    const out = folded.dims[0] as number;
    const perOut = folded.data.length / out;
    if (p.name === weightName) {
      weights.set(
        p.name,
        Float32Array.from(folded.data as ArrayLike<number>, (v) => v * MNIST_STD),
      );
    } else {
      const bias = new Float32Array(out);
      for (let o = 0; o < out; o++) {
        let sum = 0;
        for (let k = 0; k < perOut; k++) sum += folded.data[o * perOut + k] as number;
        bias[o] = (foldedBias.data[o] as number) + MNIST_MEAN * sum;
      }
      weights.set(p.name, bias);
    }
  }
  for (const p of params) {
    const size = sizeOf(p.shape);
    if (weights.get(p.name)?.length !== size) throw new NotTrainableError(`${p.name} has the wrong size`);
  }
  return { name: architecture, weights };
}
