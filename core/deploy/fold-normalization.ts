/** The initializers a first layer's weight `weightName` becomes when the input normalization is folded in. */
export const foldedNames = (weightName: string) => ({
  weight: `${weightName}.input_folded`,
  bias: `${weightName}.input_folded_bias`,
});

/**
 * Move the input normalization (x − mean)/std into the graph, so clients send raw intensities in [0, 1].
 *
 * Where the input goes straight into an unpadded Conv (or Flatten → Gemm), the normalization folds into
 * that layer's weights for free: W' = W/std, b' = b − (mean/std)·ΣW. (With zero padding it can't: the
 * padded zeros would mean −mean/std after folding.) Otherwise two nodes, Sub and Mul, go in front.
 */

import { toNumber } from '../../onnx/numbers.ts';
import { attrInt, attrInts } from '../../onnx/read-attributes.ts';
import type { NodeProto } from '../../onnx/schema.ts';
import { floatTensor } from '../../onnx/tensor.ts';
import type { GraphEditor } from './graph-edit.ts';

export type NormalizationFold = 'weights' | 'nodes';

function foldIntoWeights(editor: GraphEditor, layer: NodeProto, mean: number, std: number): boolean {
  const weight = editor.floatInitializer(layer.input[1]);
  if (!weight) return false;
  if (layer.op_type === 'Conv' && attrInts(layer, 'pads', [0, 0, 0, 0]).some((p) => p !== 0)) return false;
  if (layer.op_type === 'Gemm' && (attrInt(layer, 'transB', 0) !== 1 || attrInt(layer, 'transA', 0) !== 0))
    return false;
  const out = weight.dims[0] as number;
  const perOut = weight.data.length / out;
  const bias = editor.floatInitializer(layer.input[2]);
  const w = new Float32Array(weight.data.length);
  const b = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let sum = 0;
    for (let k = 0; k < perOut; k++) {
      const v = weight.data[o * perOut + k] as number;
      w[o * perOut + k] = v / std;
      sum += v;
    }
    b[o] = ((bias?.data[o] as number | undefined) ?? 0) - (mean / std) * sum;
  }
  const { weight: wName, bias: bName } = foldedNames(layer.input[1] as string);
  editor.setInitializer(wName, floatTensor(weight.dims.map(toNumber), w));
  editor.setInitializer(bName, floatTensor([out], b));
  layer.input = [layer.input[0] as string, wName, bName];
  editor.pruneInitializers();
  return true;
}

export function foldNormalization(editor: GraphEditor, input: string, mean: number, std: number): NormalizationFold {
  const readers = editor.consumers(input);
  if (readers.length === 1) {
    let layer = readers[0] as NodeProto;
    if (layer.op_type === 'Flatten') {
      const next = editor.consumers(layer.output[0] as string);
      layer = next.length === 1 && next[0]?.op_type === 'Gemm' ? next[0] : layer;
    }
    if ((layer.op_type === 'Conv' || layer.op_type === 'Gemm') && foldIntoWeights(editor, layer, mean, std))
      return 'weights';
  }
  const normalized = `${input}_normalized`;
  editor.rewire(input, normalized);
  const centered = `${input}_centered`;
  editor.setInitializer(`${input}_mean`, floatTensor([], [mean]));
  editor.setInitializer(`${input}_inv_std`, floatTensor([], [1 / std]));
  editor.graph.node = [
    { op_type: 'Sub', name: 'normalize_sub', input: [input, `${input}_mean`], output: [centered] },
    { op_type: 'Mul', name: 'normalize_mul', input: [centered, `${input}_inv_std`], output: [normalized] },
    ...editor.nodes,
  ];
  return 'nodes';
}
