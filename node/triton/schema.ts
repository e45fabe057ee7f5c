/**
 * The subset of Triton's model configuration (`inference.ModelConfig`, the message a `config.pbtxt`
 * holds) that this project writes and reads.
 *
 * Field numbers and enum values are the ones fixed by triton-inference-server/common's
 * protobuf/model_config.proto (proto3). Fields we don't list are refused when reading a config
 * (so a typo or an option we would silently ignore is reported), never dropped.
 */
import protobuf from 'protobufjs';

const MODEL_CONFIG_PROTO = `
syntax = "proto3";
package inference;

enum DataType {
  TYPE_INVALID = 0; TYPE_BOOL = 1; TYPE_UINT8 = 2; TYPE_UINT16 = 3; TYPE_UINT32 = 4; TYPE_UINT64 = 5;
  TYPE_INT8 = 6; TYPE_INT16 = 7; TYPE_INT32 = 8; TYPE_INT64 = 9; TYPE_FP16 = 10; TYPE_FP32 = 11; TYPE_FP64 = 12;
  TYPE_STRING = 13; TYPE_BF16 = 14;
}

message ModelInstanceGroup {
  enum Kind { KIND_AUTO = 0; KIND_GPU = 1; KIND_CPU = 2; KIND_MODEL = 3; }
  string name = 1;
  Kind kind = 4;
  int32 count = 2;
  repeated int32 gpus = 3;
}

message ModelTensorReshape {
  repeated int64 shape = 1;
}

message ModelInput {
  enum Format { FORMAT_NONE = 0; FORMAT_NHWC = 1; FORMAT_NCHW = 2; }
  string name = 1;
  DataType data_type = 2;
  Format format = 3;
  repeated int64 dims = 4;
  ModelTensorReshape reshape = 5;
  bool optional = 8;
}

message ModelOutput {
  string name = 1;
  DataType data_type = 2;
  repeated int64 dims = 3;
  ModelTensorReshape reshape = 5;
  string label_filename = 4;
}

message ModelVersionPolicy {
  message Latest { uint32 num_versions = 1; }
  message All {}
  message Specific { repeated int64 versions = 1; }
  oneof policy_choice {
    Latest latest = 1;
    All all = 2;
    Specific specific = 3;
  }
}

message ModelDynamicBatching {
  repeated int32 preferred_batch_size = 1;
  uint64 max_queue_delay_microseconds = 2;
  bool preserve_ordering = 3;
}

message ModelConfig {
  string name = 1;
  string platform = 2;
  string backend = 17;
  ModelVersionPolicy version_policy = 3;
  int32 max_batch_size = 4;
  repeated ModelInput input = 5;
  repeated ModelOutput output = 6;
  oneof scheduling_choice {
    ModelDynamicBatching dynamic_batching = 11;
  }
  repeated ModelInstanceGroup instance_group = 7;
  string default_model_filename = 8;
}
`;

const root = protobuf.parse(MODEL_CONFIG_PROTO, { keepCase: true }).root;

/** The protobufjs message type of a `config.pbtxt`. */
export const ModelConfigType = root.lookupType('inference.ModelConfig');

/** Triton's tensor data types by name, e.g. `TYPE_FP32` → 11. */

// Plain-object shapes as the text-format parser produces them (enums as their names, int64 as numbers).

export interface ModelInputConfig {
  name: string;
  data_type: string;
  format?: string;
  dims: number[];
  reshape?: { shape?: number[] };
  optional?: boolean;
}

export interface ModelOutputConfig {
  name: string;
  data_type: string;
  dims: number[];
  reshape?: { shape?: number[] };
  label_filename?: string;
}

export interface VersionPolicyConfig {
  latest?: { num_versions?: number };
  all?: Record<string, never>;
  specific?: { versions?: number[] };
}

export interface ModelConfig {
  name?: string;
  platform?: string;
  backend?: string;
  version_policy?: VersionPolicyConfig;
  max_batch_size?: number;
  input?: ModelInputConfig[];
  output?: ModelOutputConfig[];
  dynamic_batching?: {
    preferred_batch_size?: number[];
    max_queue_delay_microseconds?: number;
    preserve_ordering?: boolean;
  };
  instance_group?: { name?: string; kind?: string; count?: number; gpus?: number[] }[];
  default_model_filename?: string;
}
