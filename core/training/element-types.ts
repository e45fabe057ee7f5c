/**
 * Element types of a graph's values, for declaring the values that cross from one graph segment to the
 * next (segments.ts): from the graph's inputs and initializers, then op by op for the ops our graphs use.
 */
import { toNumber } from '../../onnx/numbers.ts';
import type { GraphProto, NodeProto } from '../../onnx/schema.ts';
import { DataType } from '../../onnx/schema.ts';

const BOOLEAN_OPS = new Set(['Greater', 'Less', 'Equal', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor']);
const INDEX_OPS = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

/** Each value's ONNX element type (TensorProto.DataType). */
export function elementTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of graph.input ?? []) types.set(v.name, v.type?.tensor_type?.elem_type ?? DataType.FLOAT);
  for (const t of graph.initializer ?? []) types.set(t.name ?? '', t.data_type ?? DataType.FLOAT);
  for (const node of graph.node ?? []) {
    node.output.forEach((o, i) => {
      if (o !== '') types.set(o, outputType(node, i, types));
    });
  }
  return types;
}

function outputType(node: NodeProto, index: number, types: Map<string, number>): number {
  const of = (i: number) => types.get(node.input[i] ?? '') ?? DataType.FLOAT;
  const attribute = (name: string) => node.attribute?.find((a) => a.name === name);
  if (BOOLEAN_OPS.has(node.op_type)) return DataType.BOOL;
  if (INDEX_OPS.has(node.op_type)) return DataType.INT64;
  switch (node.op_type) {
    case 'MaxPool':
      return index === 1 ? DataType.INT64 : of(0);
    case 'Cast': {
      const to = attribute('to')?.i;
      return to === undefined ? DataType.FLOAT : toNumber(to);
    }
    case 'Where':
      return of(1);
    case 'OneHot':
      return of(2);
    case 'ConstantOfShape':
      return attribute('value')?.t?.data_type ?? DataType.FLOAT;
    default:
      return of(0);
  }
}
