/**
 * The "explain" variant of a served model: the same graph, with every layer's output added as a graph
 * output, so one ONNX Runtime run gives the activations of every layer (the web demo's explainer draws
 * them). Nothing is recomputed outside ONNX: this only lists values the graph already produces.
 *
 * A layer is a node that computes on the image (Conv, pooling, Relu, Add, Gemm, Softmax, …). Nodes that
 * only move data around (Flatten, Reshape, Concat, Identity, …), the input normalization `export` may
 * insert, and nodes that only read initializers (Cast or DequantizeLinear of weights) are not layers.
 */

import { attrInt } from '../../onnx/read-attributes.ts';
import type { GraphProto, ModelProto, NodeProto } from '../../onnx/schema.ts';
import { DataType } from '../../onnx/schema.ts';

/** Ops that rearrange or pass values on without computing new ones: not shown as layers. */
export const LAYOUT_OPS: ReadonlySet<string> = new Set([
  'Flatten',
  'Reshape',
  'Identity',
  'Concat',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Dropout',
  'Cast',
]);

/** Names `export` gives the Sub/Mul pair that normalizes the input when it cannot fold into conv1. */
const NORMALIZATION_NODE = /^normalize_/;

/** One layer output of a model. */
export interface ExplainLayer {
  /** The value it writes (a graph output of the explain variant). */
  output: string;
  /** Its node's name in the graph ('' when unnamed). */
  node: string;
  op: string;
  /** The PyTorch module it came from, read off its weight's name (`incep1.branch5x5_2`); absent for weightless ops. */
  module?: string;
  /** Name of its weight initializer (Conv, Gemm), for showing kernels. */
  weight?: string;
}

/** The model with every layer output added as a graph output, and the layers in graph order. */
export interface ExplainedModel {
  model: ModelProto;
  layers: ExplainLayer[];
}

/** `conv1.weight` → `conv1`; `conv1.weight.input_folded` → `conv1` (normalization folded into it). */
export function moduleOfWeight(name: string): string | undefined {
  return /^(.+?)\.weight(?:\..*)?$/.exec(name)?.[1];
}

/** Ops whose output is integer whatever they read (shape arithmetic in torch-exported graphs). */
const INTEGER_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

/**
 * Float values computed from the image: the graph's (non-initializer) inputs, and each node output whose
 * data input (the first) is one — not constants made of initializers, not shape arithmetic.
 */
export function imageValues(graph: GraphProto): Set<string> {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const values = new Set((graph.input ?? []).map((i) => i.name).filter((n) => !initializers.has(n)));
  for (const node of graph.node ?? []) {
    const float = node.op_type === 'Cast' ? attrInt(node, 'to', 0) === DataType.FLOAT : !INTEGER_OPS.has(node.op_type);
    if (float && values.has(node.input[0] ?? '')) for (const o of node.output) values.add(o);
  }
  return values;
}

/** Whether a node is a layer the explainer shows (see the module comment). */
export function isLayer(node: NodeProto, image: ReadonlySet<string>): boolean {
  return !LAYOUT_OPS.has(node.op_type) && !NORMALIZATION_NODE.test(node.name ?? '') && image.has(node.output[0] ?? '');
}

/** The layers of a model, in graph (topological) order. */
export function explainLayers(model: ModelProto): ExplainLayer[] {
  const graph = model.graph ?? {};
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const image = imageValues(graph);
  return (graph.node ?? [])
    .filter((node) => isLayer(node, image))
    .map((node) => {
      const weight = node.op_type === 'Conv' || node.op_type === 'Gemm' ? node.input[1] : undefined;
      const hasWeight = weight !== undefined && initializers.has(weight);
      const module = hasWeight ? moduleOfWeight(weight) : undefined;
      return {
        output: node.output[0] as string,
        node: node.name ?? '',
        op: node.op_type,
        ...(module ? { module } : {}),
        ...(hasWeight ? { weight } : {}),
      };
    });
}

/** Add every layer's output as a float graph output (shapes left to ORT's own inference). Pure: `source` is not changed. */
export function explainModel(source: ModelProto): ExplainedModel {
  const model = structuredClone(source);
  const graph = model.graph ?? {};
  const layers = explainLayers(model);
  const outputs = graph.output ?? [];
  const present = new Set(outputs.map((o) => o.name));
  for (const layer of layers) {
    if (present.has(layer.output)) continue;
    outputs.push({ name: layer.output, type: { tensor_type: { elem_type: DataType.FLOAT } } });
  }
  model.graph = { ...graph, output: outputs };
  return { model, layers };
}
