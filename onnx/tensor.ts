/**
 * Typed tensors as the project holds them in memory, and their TensorProto form.
 * Data goes into `raw_data` (little-endian bytes), the compact encoding ORT reads fastest.
 */

import { toNumber } from './numbers.ts';
import { DataType, type DataTypeName, type TensorProto } from './schema.ts';

export type TensorArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Uint16Array;

/** A tensor: element type, dims (row-major) and its data. */
export interface Tensor {
  dataType: DataTypeName;
  dims: number[];
  data: TensorArray;
}

const ARRAY_FOR: Record<DataTypeName, { new (buffer: ArrayBuffer): TensorArray; BYTES_PER_ELEMENT: number }> = {
  FLOAT: Float32Array,
  DOUBLE: Float64Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  BOOL: Uint8Array,
  FLOAT16: Uint16Array,
};

/** Number of elements a shape holds. */
export function sizeOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkSize(dims: readonly number[], length: number): void {
  if (sizeOf(dims) !== length) {
    throw new Error(`tensor data has ${length} elements but dims [${dims.join(', ')}] need ${sizeOf(dims)}`);
  }
}

/** @example floatTensor([2], [0.5, 1]) */
export function floatTensor(dims: number[], data: ArrayLike<number>): Tensor {
  const array = data instanceof Float32Array ? data : Float32Array.from(data);
  checkSize(dims, array.length);
  return { dataType: 'FLOAT', dims, data: array };
}

/** @example int64Tensor([1], [0]) — shapes, axes and indices are int64 in ONNX. */
export function int64Tensor(dims: number[], data: ArrayLike<number | bigint>): Tensor {
  const array = BigInt64Array.from(Array.from(data, (v) => BigInt(v)));
  checkSize(dims, array.length);
  return { dataType: 'INT64', dims, data: array };
}

/** Encode as a TensorProto with raw little-endian bytes. */
export function toTensorProto(name: string, tensor: Tensor): TensorProto {
  const { data } = tensor;
  return {
    name,
    dims: tensor.dims,
    data_type: DataType[tensor.dataType],
    raw_data: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

const NAME_FOR_CODE = new Map<number, DataTypeName>(
  Object.entries(DataType).map(([name, code]) => [code, name as DataTypeName]),
);

/** Decode a TensorProto (raw_data or the typed repeated fields) into a Tensor. */
export function fromTensorProto(proto: TensorProto): Tensor {
  const code = proto.data_type ?? 0;
  const dataType = NAME_FOR_CODE.get(code);
  if (!dataType) throw new Error(`tensor '${proto.name ?? ''}' has unsupported data type ${code}`);
  if (proto.data_location === 1)
    throw new Error(`tensor '${proto.name ?? ''}' uses external data, which is not supported`);
  const dims = (proto.dims ?? []).map(toNumber);
  const Array_ = ARRAY_FOR[dataType];
  let data: TensorArray;
  if (proto.raw_data && proto.raw_data.length > 0) {
    const bytes = proto.raw_data;
    // Copy into a fresh, aligned buffer: protobuf gives views into a larger (pooled) buffer at any offset.
    data = new Array_(new Uint8Array(bytes).buffer);
  } else if (dataType === 'FLOAT') {
    data = Float32Array.from(proto.float_data ?? []);
  } else if (dataType === 'DOUBLE') {
    data = Float64Array.from(proto.double_data ?? []);
  } else if (dataType === 'INT64') {
    data = BigInt64Array.from((proto.int64_data ?? []).map((v) => BigInt(toNumber(v))));
  } else if (dataType === 'FLOAT16') {
    data = Uint16Array.from(proto.int32_data ?? []);
  } else {
    const values = proto.int32_data ?? [];
    data = new Array_(new ArrayBuffer(values.length * Array_.BYTES_PER_ELEMENT));
    (data as Int32Array).set(values);
  }
  checkSize(dims, data.length);
  return { dataType, dims, data };
}
