/**
 * A served model made ready for explaining, in the browser: its bytes decoded, the explain variant built
 * (every layer's output a graph output — core/deploy/explain.ts) and run by onnxruntime-web, its
 * stages, receptive fields and conv kernels read from the same bytes.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { IMAGE_SHAPE, normalizationFolded, normalizePixels } from '../../../core/contract.ts';
import { type ExplainLayer, explainModel } from '../../../core/deploy/explain.ts';
import { type ExplainStage, explainStages } from '../../../core/deploy/explain-structure.ts';
import { type Field, receptiveFields } from '../../../core/deploy/receptive-field.ts';
import { decodeModel, encodeModel } from '../../../onnx/codec.ts';
import { describeModel } from '../../../onnx/describe.ts';
import { fromTensorProto, type Tensor } from '../../../onnx/tensor.ts';
import { type Backend, type ModelEntry, modelBytes } from '../models.ts';

/** One layer's output after a run: its ONNX dims (e.g. [1, 10, 24, 24] or [1, 10]) and values. */
export interface Activation {
  dims: number[];
  values: Float32Array;
}

export interface ExplainableModel {
  layers: ExplainLayer[];
  stages: ExplainStage[];
  /** Receptive field per value name (spatial values only). */
  fields: Map<string, Field>;
  /** A Conv's weight [out, in, kh, kw] by initializer name. */
  kernel(weight: string): Tensor | undefined;
  /** Every layer's activations for one raw 28×28 image in [0, 1]. */
  run(input: Float32Array): Promise<Map<string, Activation>>;
}

async function load(model: ModelEntry, backend: Backend): Promise<ExplainableModel> {
  const proto = decodeModel(await modelBytes(model));
  const { model: explained, layers } = explainModel(proto);
  const initializers = new Map((proto.graph?.initializer ?? []).map((t) => [t.name, t]));
  const kernels = new Map<string, Tensor | undefined>();
  const folded = normalizationFolded(describeModel(proto).metadata);
  const session = await ort.InferenceSession.create(encodeModel(explained), { executionProviders: [backend] });
  return {
    layers,
    stages: explainStages(proto),
    fields: receptiveFields(proto),
    kernel(weight) {
      if (!kernels.has(weight)) {
        const t = initializers.get(weight);
        const tensor = t ? fromTensorProto(t) : undefined;
        kernels.set(weight, tensor?.dataType === 'FLOAT' && tensor.dims.length === 4 ? tensor : undefined);
      }
      return kernels.get(weight);
    },
    async run(input) {
      const pixels = folded ? input.slice() : normalizePixels(input);
      const out = await session.run({
        [session.inputNames[0] as string]: new ort.Tensor('float32', pixels, [1, ...IMAGE_SHAPE]),
      });
      const activations = new Map<string, Activation>();
      for (const layer of layers) {
        const tensor = out[layer.output];
        if (tensor) activations.set(layer.output, { dims: [...tensor.dims], values: tensor.data as Float32Array });
      }
      return activations;
    },
  };
}

const loaded = new Map<string, Promise<ExplainableModel>>();

/** The explainable model, loaded once per model version and backend. */
export function explainable(model: ModelEntry, backend: Backend): Promise<ExplainableModel> {
  const key = `${model.name}/${model.version}/${backend}`;
  let m = loaded.get(key);
  if (!m) {
    m = load(model, backend);
    loaded.set(key, m);
    m.catch(() => loaded.delete(key));
  }
  return m;
}
