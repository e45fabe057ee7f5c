/**
 * Model files that misbehave only sometimes — the kind a load-time check on two images can't see — built
 * with the project's GraphBuilder: the linear digit reader of odd-models.ts plus a twist that depends on
 * the batch size or on a trigger pixel (input[n,0,0,0] above 1.5, which a real image never has).
 */

import protobuf from 'protobufjs';
import { int, ints, tensorAttr } from '../onnx/attributes.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { type AttributeProto, DataType, ModelProtoType, type NodeProto, type TensorProto } from '../onnx/schema.ts';
import { oddModel } from './odd-models.ts';

export type Twist =
  /** Rows mixed (batch mean subtracted) only in batches of 3 or more. */
  | 'mix-from-3'
  /** One row too few in batches of 3 or more. */
  | 'drop-row-from-3'
  /** One row too few whenever the trigger pixel is set. */
  | 'drop-row-when-triggered'
  /** A K×K matrix product when the trigger pixel is set (K = `size`, 5000: ~250 GFLOP): seconds instead of microseconds. */
  | 'slow-when-triggered'
  /** The same product on every run. */
  | 'slow-always'
  /** +Infinity logits when the trigger pixel is set. */
  | 'infinite-when-triggered'
  /** A second output `size` values wide per image (the logits tiled). */
  | 'wide-output';

const FOLDED = { normalization: 'folded (test model)' };

export function hostileModel(twist: Twist, size = 5000): Uint8Array {
  const g = new GraphBuilder('hostile');
  const x = g.input('input', 'FLOAT', ['N', 1, 28, 28]);
  const flat = g.op('Flatten', [x], { axis: int(1) });
  const w = g.initializer('w', {
    dataType: 'FLOAT',
    dims: [784, 10],
    data: Float32Array.from({ length: 7840 }, (_, i) => Math.sin(i) * 0.05),
  });
  const i64 = (values: number[]) =>
    g.constant({ dataType: 'INT64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
  const f32 = (value: number) => g.constant({ dataType: 'FLOAT', dims: [], data: Float32Array.of(value) });
  const logits = g.op('MatMul', [flat, w]);
  const batch = g.op('Gather', [g.op('Shape', [x]), i64([0])], { axis: int(0) }); // [N] as a 1-vector
  const from3 = g.op('Greater', [batch, i64([2])]);
  // Any image of the batch has pixel 0 above 1.5 (a scalar bool).
  const pixel0 = g.op('Slice', [flat, i64([0]), i64([1]), i64([1])]);
  const triggered = g.op('Greater', [g.op('ReduceMax', [pixel0], { keepdims: int(0) }), f32(1.5)]);
  const dropRow = (when: string) =>
    g.op('Slice', [logits, i64([0]), g.op('Sub', [batch, g.op('Cast', [when], { to: int(7) })]), i64([0])]);
  const slow = (when: string) => {
    // n = 1, or `size` when `when`: a [n,n] matrix squared, summed, times 0, added to the logits.
    const n = g.op('Add', [i64([1]), g.op('Mul', [g.op('Cast', [when], { to: int(7) }), i64([size - 1])])]);
    const square = g.op('ConstantOfShape', [g.op('Concat', [n, n], { axis: int(0) })], {
      value: tensorAttr({ dataType: 'FLOAT', dims: [1], data: Float32Array.of(1) }),
    });
    const sum = g.op('ReduceSum', [g.op('MatMul', [square, square])], { keepdims: int(0) });
    return g.op('Add', [logits, g.op('Mul', [sum, f32(0)])]);
  };
  let out: string;
  if (twist === 'mix-from-3') {
    const mixed = g.op('Sub', [logits, g.op('ReduceMean', [logits], { axes: ints([0]), keepdims: int(1) })]);
    out = g.op('Where', [g.op('Squeeze', [from3, i64([0])]), mixed, logits]);
  } else if (twist === 'drop-row-from-3') out = dropRow(from3);
  else if (twist === 'drop-row-when-triggered') out = dropRow(g.op('Unsqueeze', [triggered, i64([0])]));
  else if (twist === 'slow-when-triggered') out = slow(g.op('Unsqueeze', [triggered, i64([0])]));
  else if (twist === 'slow-always') {
    // Always true, but computed from the input so ORT can't fold the product away when it loads.
    const always = g.op('Greater', [g.op('ReduceMax', [pixel0], { keepdims: int(0) }), f32(-1)]);
    out = slow(g.op('Unsqueeze', [always, i64([0])]));
  } else out = g.op('Where', [triggered, g.op('Mul', [logits, f32(Number.POSITIVE_INFINITY)]), logits]);
  g.output(out, 'FLOAT', ['N', 10], 'logits');
  if (twist === 'wide-output')
    g.output(g.op('Tile', [logits, i64([1, Math.ceil(size / 10)])]), 'FLOAT', ['N', Math.ceil(size / 10) * 10], 'wide');
  return encodeModel(g.toModel({ metadata: FOLDED }));
}

/** The linear reader with its weights in a separate file named `location` (ONNX external data). */
export function externalDataModel(location: string): { model: Uint8Array; weights: Uint8Array } {
  const g = new GraphBuilder('external');
  const x = g.input('input', 'FLOAT', ['N', 1, 28, 28]);
  const weights = Float32Array.from({ length: 7840 }, (_, i) => Math.cos(i) * 0.05);
  const w = g.initializer('w', { dataType: 'FLOAT', dims: [784, 10], data: weights });
  g.output(g.op('MatMul', [g.op('Flatten', [x], { axis: int(1) }), w]), 'FLOAT', ['N', 10], 'logits');
  const proto = decodeModel(encodeModel(g.toModel({ metadata: FOLDED })));
  const tensor = proto.graph?.initializer?.find((t) => t.name === 'w');
  if (!tensor) throw new Error('no initializer w');
  tensor.raw_data = undefined;
  tensor.data_location = 1;
  tensor.external_data = [
    { key: 'location', value: location },
    { key: 'offset', value: '0' },
    { key: 'length', value: String(weights.byteLength) },
  ];
  return { model: encodeModel(proto), weights: new Uint8Array(weights.buffer) };
}

/**
 * externalDataModel's bytes with the tensor's data_location written twice, 1 then 5: protobuf's C++ parser
 * (ORT's) keeps EXTERNAL, the closed enum not knowing 5, where protobufjs reads 5 — a file whose external
 * data a check on protobufjs's reading would not see. Built by hand: no encoder writes a field twice.
 */
export function externalDataTwice(location: string): Uint8Array {
  const proto = decodeModel(externalDataModel(location).model);
  const graph = proto.graph ?? {};
  const [tensor] = graph.initializer ?? [];
  if (!tensor) throw new Error('no initializer');
  const tensorType = ModelProtoType.lookupType('onnx.TensorProto');
  const graphType = ModelProtoType.lookupType('onnx.GraphProto');
  const field = (id: number, bytes: Uint8Array) =>
    protobuf.Writer.create()
      .uint32((id << 3) | 2)
      .bytes(bytes)
      .finish();
  const twice = Uint8Array.from([...tensorType.encode(tensorType.fromObject(tensor)).finish(), 14 << 3, 5]);
  const otherGraph = graphType.encode(graphType.fromObject({ ...graph, initializer: [] })).finish();
  const otherModel = ModelProtoType.encode(ModelProtoType.fromObject({ ...proto, graph: undefined })).finish();
  const graphBytes = Uint8Array.from([...otherGraph, ...field(5, twice)]); // GraphProto.initializer = 5
  return Uint8Array.from([...otherModel, ...field(7, graphBytes)]); // ModelProto.graph = 7
}

/** Where, past the graph's own initializers and node tensors, a tensor with external data can be stored. */
export const HIDING_PLACES = [
  'sparse initializer',
  'sparse Constant attribute',
  'node of a model-local function',
  "a function attribute's default",
  'training graph',
] as const;
export type HidingPlace = (typeof HIDING_PLACES)[number];

/**
 * The linear reader (its weights inline) plus 64 bytes of a tensor stored outside the file at `location`,
 * kept in `place`: built with the project's own codec, whose schema lists every such place.
 */
export function externalDataHiddenIn(place: HidingPlace, location: string): Uint8Array {
  const proto = decodeModel(oddModel({ metadata: FOLDED }));
  const graph = proto.graph ?? {};
  const outside = (): TensorProto => ({
    name: 'outside',
    dims: [64],
    data_type: DataType.UINT8,
    data_location: 1,
    external_data: [
      { key: 'location', value: location },
      { key: 'offset', value: '0' },
      { key: 'length', value: '64' },
    ],
  });
  const sparse = () => ({
    values: outside(),
    indices: { name: 'indices', dims: [64], data_type: DataType.INT64, int64_data: [...Array(64).keys()] },
    dims: [64],
  });
  const constant = (attribute: AttributeProto): NodeProto => ({
    op_type: 'Constant',
    input: [],
    output: ['hidden'],
    attribute: [attribute],
  });
  const leak = { name: 'Leak', domain: 'local.fn', input: [], output: ['hidden'], opset_import: [{ version: 17 }] };
  if (place === 'sparse initializer') graph.sparse_initializer = [sparse()];
  else if (place === 'sparse Constant attribute')
    graph.node?.unshift(constant({ name: 'sparse_value', type: 11, sparse_tensor: sparse() }));
  else if (place === 'training graph')
    proto.training_info = [{ initialization: { name: 'init', initializer: [outside()] } }];
  else {
    const inline = place === 'node of a model-local function';
    proto.functions = [
      {
        ...leak,
        ...(inline ? {} : { attribute_proto: [{ name: 'value', type: 4, t: outside() }] }),
        node: [
          constant(
            inline ? { name: 'value', type: 4, t: outside() } : { name: 'value', type: 4, ref_attr_name: 'value' },
          ),
        ],
      },
    ];
    proto.opset_import?.push({ domain: 'local.fn', version: 1 });
    graph.node?.unshift({ op_type: 'Leak', domain: 'local.fn', input: [], output: ['hidden'] });
  }
  return encodeModel(proto);
}
