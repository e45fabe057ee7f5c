/**
 * The "penultimate" variant of a served model: the same graph with the features its classifier reads —
 * the data input of the last Gemm or MatMul computed from the image — added as an output, for the
 * embedding view (each test digit as a point of that space, projected to 2-D).
 */
import type { ModelProto } from '../../onnx/schema.ts';
import { DataType } from '../../onnx/schema.ts';
import { imageValues } from './explain.ts';

export interface PenultimateModel {
  model: ModelProto;
  /** The features' value name, e.g. `Flatten_6_out0` for the cnn ([N, 320]). */
  features: string;
  /** The classifier node that reads them. */
  classifier: string;
}

export function penultimateModel(source: ModelProto): PenultimateModel {
  const model = structuredClone(source);
  const graph = model.graph ?? {};
  const image = imageValues(graph);
  const last = (graph.node ?? [])
    .filter((n) => (n.op_type === 'Gemm' || n.op_type === 'MatMul') && image.has(n.input[0] ?? ''))
    .at(-1);
  if (!last) throw new Error('the model has no Gemm or MatMul reading the image, so no penultimate layer');
  const features = last.input[0] as string;
  if (!(graph.output ?? []).some((o) => o.name === features)) {
    graph.output = [...(graph.output ?? []), { name: features, type: { tensor_type: { elem_type: DataType.FLOAT } } }];
  }
  return { model, features, classifier: last.name ?? '' };
}
