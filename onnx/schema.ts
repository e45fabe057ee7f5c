/**
 * The subset of the ONNX protobuf schema this project reads and writes.
 *
 * Field numbers are the ones fixed by onnx/onnx.proto (proto2); anything we don't list is skipped
 * on read and never written. Keeping the schema as text here (not a generated module) means one
 * file shows exactly which part of ONNX we depend on, and it works in Node and the browser alike.
 * Every place a tensor can be stored is listed (sparse ones, model-local functions, training graphs),
 * even where we never build one: the server's external-data check must see each tensor of a hostile file.
 */
import protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11; TYPE_PROTO = 13;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  optional SparseTensorProto sparse_tensor = 22;
  repeated SparseTensorProto sparse_tensors = 23;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated TrainingInfoProto training_info = 20;
  repeated FunctionProto functions = 25;
}

message TrainingInfoProto {
  optional GraphProto initialization = 1;
  optional GraphProto algorithm = 2;
  repeated StringStringEntryProto initialization_binding = 3;
  repeated StringStringEntryProto update_binding = 4;
}

message FunctionProto {
  optional string name = 1;
  repeated string input = 4;
  repeated string output = 5;
  repeated string attribute = 6;
  repeated AttributeProto attribute_proto = 11;
  repeated NodeProto node = 7;
  optional string doc_string = 8;
  repeated OperatorSetIdProto opset_import = 9;
  optional string domain = 10;
  optional string overload = 13;
  repeated ValueInfoProto value_info = 12;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated SparseTensorProto sparse_initializer = 15;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; STRING = 8;
    BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13; COMPLEX64 = 14; COMPLEX128 = 15; BFLOAT16 = 16;
  }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}

message SparseTensorProto {
  optional TensorProto values = 1;
  optional TensorProto indices = 2;
  repeated int64 dims = 3;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}
`;

const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;

/** The protobufjs message type for an ONNX model file. */
export const ModelProtoType = root.lookupType('onnx.ModelProto');

/** ONNX element types (TensorProto.DataType) that the project uses. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;
export type DataTypeName = keyof typeof DataType;

/** AttributeProto.AttributeType values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

// Plain-object shapes of the messages as protobufjs produces/accepts them (keepCase: true).
// int64 fields read back as Long (or number); `toNumber` in reader.ts normalizes them.
export type Int64 = number | { toNumber(): number };

export interface TensorProto {
  name?: string;
  dims?: Int64[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int64[];
  double_data?: number[];
  raw_data?: Uint8Array;
  doc_string?: string;
  /** `location`, `offset`, `length` of data stored outside the model file (data_location 1). */
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
}

export interface AttributeProto {
  name: string;
  type: number;
  /** Inside a function: the value is the calling node's attribute of this name. */
  ref_attr_name?: string;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  g?: GraphProto;
  graphs?: GraphProto[];
  sparse_tensor?: SparseTensorProto;
  sparse_tensors?: SparseTensorProto[];
}

/** A sparse tensor: its non-zero `values`, their `indices`, and the dense shape. */
export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: Int64[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  op_type: string;
  domain?: string;
  attribute?: AttributeProto[];
}

export interface DimensionProto {
  dim_value?: Int64;
  dim_param?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: DimensionProto[] } } };
  doc_string?: string;
}

export interface GraphProto {
  name?: string;
  node?: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
  doc_string?: string;
  sparse_initializer?: SparseTensorProto[];
}

/** A model-local function: an operator (domain, name) whose body is `node`. */
export interface FunctionProto {
  name?: string;
  domain?: string;
  overload?: string;
  input?: string[];
  output?: string[];
  attribute?: string[];
  /** Attributes with default values. */
  attribute_proto?: AttributeProto[];
  node?: NodeProto[];
  opset_import?: { domain?: string; version?: Int64 }[];
  value_info?: ValueInfoProto[];
  doc_string?: string;
  metadata_props?: { key?: string; value?: string }[];
}

/** Training graphs stored with a model (ORT's inference ignores them). */
export interface TrainingInfoProto {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initialization_binding?: { key?: string; value?: string }[];
  update_binding?: { key?: string; value?: string }[];
}

export interface ModelProto {
  ir_version?: Int64;
  opset_import?: { domain?: string; version?: Int64 }[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: Int64;
  doc_string?: string;
  graph?: GraphProto;
  metadata_props?: { key?: string; value?: string }[];
  training_info?: TrainingInfoProto[];
  functions?: FunctionProto[];
}
