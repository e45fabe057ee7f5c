/**
 * What a reader of an .onnx file wants to know: opset, IR version, inputs and outputs with their
 * shapes, an op histogram, the parameter count and the metadata. Works for any ONNX file, ours or not.
 */
import type { Dim } from './builder.ts';
import { toNumber } from './numbers.ts';
import { DataType, type ModelProto, type ValueInfoProto } from './schema.ts';
import { sizeOf } from './tensor.ts';

export interface ValueDescription {
  name: string;
  /** e.g. 'FLOAT'; 'UNKNOWN(n)' for a type we don't name. */
  dataType: string;
  shape: Dim[];
}

export interface ModelDescription {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  /** The default-domain opset version. */
  opset: number;
  producerName: string;
  producerVersion: string;
  graphName: string;
  inputs: ValueDescription[];
  outputs: ValueDescription[];
  /** Op type → how many nodes use it, most frequent first. */
  ops: Record<string, number>;
  nodeCount: number;
  initializerCount: number;
  /** Elements in weight initializers (float, or int8 for quantized weights; not shapes, scales or zero points). */
  parameterCount: number;
  metadata: Record<string, string>;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(DataType).map(([name, code]) => [code, name]));

function describeValue(value: ValueInfoProto): ValueDescription {
  const tensor = value.type?.tensor_type;
  const code = tensor?.elem_type ?? 0;
  return {
    name: value.name,
    dataType: TYPE_NAMES.get(code) ?? `UNKNOWN(${code})`,
    shape: (tensor?.shape?.dim ?? []).map((d) =>
      d.dim_param ? d.dim_param : d.dim_value !== undefined ? toNumber(d.dim_value) : '?',
    ),
  };
}

/** Element types that hold weights (int8/uint8 for quantized ones); int64 initializers are shapes and axes. */
const WEIGHT_TYPES = new Set<number>([
  DataType.FLOAT,
  DataType.DOUBLE,
  DataType.FLOAT16,
  DataType.INT8,
  DataType.UINT8,
]);

export function describeModel(model: ModelProto): ModelDescription {
  const graph = model.graph ?? {};
  const initializers = graph.initializer ?? [];
  const initializerNames = new Set(initializers.map((t) => t.name));
  const histogram = new Map<string, number>();
  for (const node of graph.node ?? []) {
    const key = node.domain ? `${node.domain}.${node.op_type}` : node.op_type;
    histogram.set(key, (histogram.get(key) ?? 0) + 1);
  }
  // Scales and zero points of (De)QuantizeLinear describe weights; they are not weights themselves.
  const quantizationParams = new Set(
    (graph.node ?? [])
      .filter((n) => n.op_type === 'DequantizeLinear' || n.op_type === 'QuantizeLinear')
      .flatMap((n) => n.input.slice(1)),
  );
  const opsets = (model.opset_import ?? []).map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version) }));
  return {
    irVersion: toNumber(model.ir_version),
    opsets,
    opset: opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0,
    producerName: model.producer_name ?? '',
    producerVersion: model.producer_version ?? '',
    graphName: graph.name ?? '',
    // Before IR 4, initializers were also listed as inputs; they are not inputs a caller feeds.
    inputs: (graph.input ?? []).filter((i) => !initializerNames.has(i.name)).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
    ops: Object.fromEntries([...histogram].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    nodeCount: graph.node?.length ?? 0,
    initializerCount: initializers.length,
    parameterCount: initializers
      .filter((t) => WEIGHT_TYPES.has(t.data_type ?? 0) && !quantizationParams.has(t.name ?? ''))
      .reduce((sum, t) => sum + sizeOf((t.dims ?? []).map(toNumber)), 0),
    metadata: Object.fromEntries((model.metadata_props ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
  };
}
