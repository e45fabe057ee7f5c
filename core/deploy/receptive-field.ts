/**
 * Receptive fields: which input pixels each cell of a layer's output depends on, from the graph's Conv and
 * pooling attributes (kernel, stride, pads, dilation) along every path from the input. Per axis, cell i of
 * a value covers input rows [i·jump + offset, i·jump + offset + size − 1]; through a layer with kernel k,
 * stride s, leading pad p and dilation d: size += d·(k − 1)·jump, offset −= p·jump, jump ·= s. Where paths
 * meet (Add, Concat) the field is the union of theirs. Values that mix every position (Flatten, Gemm,
 * global pooling) have no field: they see the whole image.
 */
import { toNumber } from '../../onnx/numbers.ts';
import { attrInts } from '../../onnx/read-attributes.ts';
import type { ModelProto, NodeProto } from '../../onnx/schema.ts';
import { imageValues } from './explain.ts';

/** One axis of a receptive field, in input pixels. */
export interface AxisField {
  jump: number;
  size: number;
  offset: number;
}

/** Rows, then columns. */
export type Field = readonly [AxisField, AxisField];

/** A cell's field on the input, clipped to it: inclusive pixel bounds. */
export interface PixelBox {
  top: number;
  left: number;
  bottom: number;
  right: number;
}

const WINDOW_OPS = new Set(['Conv', 'MaxPool', 'AveragePool', 'LpPool']);
/** Ops whose output cell (y, x) depends only on cell (y, x) of their inputs. */
const POINTWISE_OPS = new Set([
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Clip',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Concat',
  'BatchNormalization',
  'Identity',
  'Dropout',
  'Cast',
]);

function autoPadded(node: NodeProto): boolean {
  const a = node.attribute?.find((x) => x.name === 'auto_pad');
  const value = a?.s ? new TextDecoder().decode(a.s) : 'NOTSET';
  return value !== 'NOTSET' && value !== 'VALID';
}

function union(fields: Field[]): Field | undefined {
  const [first] = fields;
  if (!first) return undefined;
  const axis = (k: 0 | 1): AxisField => {
    const axes = fields.map((f) => f[k]);
    const offset = Math.min(...axes.map((a) => a.offset));
    const end = Math.max(...axes.map((a) => a.offset + a.size));
    return { jump: Math.max(...axes.map((a) => a.jump)), size: end - offset, offset };
  };
  return [axis(0), axis(1)];
}

function throughWindow(node: NodeProto, input: Field, weightDims: number[] | undefined): Field | undefined {
  if (autoPadded(node)) return undefined;
  const kernel = attrInts(node, 'kernel_shape', weightDims?.slice(2) ?? []);
  if (kernel.length !== 2) return undefined;
  const strides = attrInts(node, 'strides', [1, 1]);
  const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
  const dilations = attrInts(node, 'dilations', [1, 1]);
  const axis = (k: 0 | 1): AxisField => {
    const { jump, size, offset } = input[k];
    return {
      jump: jump * (strides[k] ?? 1),
      size: size + (dilations[k] ?? 1) * ((kernel[k] as number) - 1) * jump,
      offset: offset - (pads[k] ?? 0) * jump,
    };
  };
  return [axis(0), axis(1)];
}

/** The receptive field of every spatial value computed from the model's input. */
export function receptiveFields(model: ModelProto): Map<string, Field> {
  const graph = model.graph ?? {};
  const image = imageValues(graph);
  const weightDims = new Map((graph.initializer ?? []).map((t) => [t.name, (t.dims ?? []).map(toNumber)]));
  const fields = new Map<string, Field>();
  const pixel: AxisField = { jump: 1, size: 1, offset: 0 };
  for (const input of graph.input ?? []) if (image.has(input.name)) fields.set(input.name, [pixel, pixel]);
  for (const node of graph.node ?? []) {
    const inputs = node.input.map((i) => fields.get(i)).filter((f): f is Field => f !== undefined);
    let field: Field | undefined;
    if (WINDOW_OPS.has(node.op_type) && inputs[0])
      field = throughWindow(node, inputs[0], weightDims.get(node.input[1]));
    else if (POINTWISE_OPS.has(node.op_type)) field = union(inputs);
    if (field) for (const o of node.output) fields.set(o, field);
  }
  return fields;
}

/** The input pixels cell (y, x) sees, clipped to a side×side input. */
export function cellField(field: Field, y: number, x: number, side: number): PixelBox {
  const [rows, cols] = field;
  const clip = (v: number) => Math.min(side - 1, Math.max(0, v));
  return {
    top: clip(y * rows.jump + rows.offset),
    bottom: clip(y * rows.jump + rows.offset + rows.size - 1),
    left: clip(x * cols.jump + cols.offset),
    right: clip(x * cols.jump + cols.offset + cols.size - 1),
  };
}
