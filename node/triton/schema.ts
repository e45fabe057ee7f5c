/**
 * The subset of Triton's model configuration (`inference.ModelConfig`, the message a `config.pbtxt`
 * holds) that this project writes and reads.
 *
 * Field numbers and enum values are the ones fixed by triton-inference-server/common's
 * protobuf/model_config.proto (proto3). Fields we don't list are refused when reading a config
 * (so a typo or an option we would silently ignore is reported), never dropped.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The schema's file: beside this module, and beside the server's bundle (deploy/bundle-server.mjs). */
export const MODEL_CONFIG_PROTO_FILE = fileURLToPath(new URL('./model_config.proto', import.meta.url));

const root = protobuf.parse(readFileSync(MODEL_CONFIG_PROTO_FILE, 'utf8'), { keepCase: true }).root;

/** The protobufjs message type of a `config.pbtxt`. */
export const ModelConfigType = root.lookupType('inference.ModelConfig');

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
