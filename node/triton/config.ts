/**
 * Triton model configuration for an ONNX model: what `config.pbtxt` says about it, derived from the
 * model's own graph (names, data types, shapes), so the same `models/` directory loads unchanged in
 * Triton, in KServe's Triton runtime and in our server.
 *
 * A model whose every input and output has a symbolic first dimension batches: `max_batch_size` > 0
 * and dims without the batch axis. Anything else (a static batch of 1, say) is described truthfully:
 * `max_batch_size: 0`, full dims (-1 where a dimension is free) and no dynamic batching.
 */

import { BATCHING_DEFAULTS } from '../../core/contract.ts';
import { toNumber } from '../../onnx/numbers.ts';
import type { ModelProto, ValueInfoProto } from '../../onnx/schema.ts';
import { type ModelConfig, ModelConfigType, type ModelInputConfig, type ModelOutputConfig } from './schema.ts';
import { formatTextFormat, parseTextFormat } from './text-format.ts';

/** The file Triton reads beside a model's version folders. */
export const CONFIG_FILE = 'config.pbtxt';
export const ONNX_PLATFORM = 'onnxruntime_onnx';

/** Our server's batching defaults (largest batch, how long a first request waits for company). */
export const DEFAULT_MAX_BATCH_SIZE = BATCHING_DEFAULTS.maxBatch;
export const DEFAULT_MAX_QUEUE_DELAY_MICROSECONDS = BATCHING_DEFAULTS.delayMs * 1000;

/** ONNX TensorProto.DataType → Triton DataType. */
const ONNX_TO_TRITON: Record<number, string> = {
  1: 'TYPE_FP32',
  2: 'TYPE_UINT8',
  3: 'TYPE_INT8',
  4: 'TYPE_UINT16',
  5: 'TYPE_INT16',
  6: 'TYPE_INT32',
  7: 'TYPE_INT64',
  8: 'TYPE_STRING',
  9: 'TYPE_BOOL',
  10: 'TYPE_FP16',
  11: 'TYPE_FP64',
  12: 'TYPE_UINT32',
  13: 'TYPE_UINT64',
  16: 'TYPE_BF16',
};

/** A graph input or output as Triton sees it: full shape, -1 for a free dimension. */
interface GraphTensor {
  name: string;
  dataType: string;
  shape: number[];
}

function graphTensor(value: ValueInfoProto, role: string): GraphTensor {
  const tensor = value.type?.tensor_type;
  const dataType = ONNX_TO_TRITON[tensor?.elem_type ?? 0];
  if (!tensor || !dataType)
    throw new Error(
      `${role} '${value.name}' has element type ${tensor?.elem_type ?? 'none'}, which Triton has no type for`,
    );
  if (!tensor.shape) throw new Error(`${role} '${value.name}' declares no shape; Triton's config needs its rank`);
  const shape = (tensor.shape.dim ?? []).map((d) => {
    const size = d.dim_param ? 0 : toNumber(d.dim_value);
    return size > 0 ? size : -1;
  });
  return { name: value.name, dataType, shape };
}

/** The model's real inputs (old IR versions also list initializers as inputs) and outputs. */
function graphTensors(model: ModelProto): { inputs: GraphTensor[]; outputs: GraphTensor[] } {
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  return {
    inputs: (model.graph?.input ?? []).filter((v) => !initializers.has(v.name)).map((v) => graphTensor(v, 'input')),
    outputs: (model.graph?.output ?? []).map((v) => graphTensor(v, 'output')),
  };
}

/** Every input and output has a free first dimension: the model takes a batch of any size. */
function batches(tensors: GraphTensor[]): boolean {
  return tensors.length > 0 && tensors.every((t) => t.shape.length > 0 && t.shape[0] === -1);
}

/**
 * The config Triton needs for `model` under `name`. All versions load (`version_policy: { all { } }`),
 * as in our server, where a version is addressed by number and the newest one is the default.
 */
export function tritonConfigFor(model: ModelProto, name: string): ModelConfig {
  const { inputs, outputs } = graphTensors(model);
  const batching = batches([...inputs, ...outputs]);
  const dims = (t: GraphTensor) => (batching ? t.shape.slice(1) : t.shape);
  return {
    name,
    platform: ONNX_PLATFORM,
    version_policy: { all: {} },
    max_batch_size: batching ? DEFAULT_MAX_BATCH_SIZE : 0,
    input: inputs.map((t): ModelInputConfig => ({ name: t.name, data_type: t.dataType, dims: dims(t) })),
    output: outputs.map((t): ModelOutputConfig => ({ name: t.name, data_type: t.dataType, dims: dims(t) })),
    ...(batching
      ? {
          dynamic_batching: {
            max_queue_delay_microseconds: DEFAULT_MAX_QUEUE_DELAY_MICROSECONDS,
          },
        }
      : {}),
  };
}

/** `config.pbtxt` text for a config, with a header saying where it came from. */
export function formatTritonConfig(config: ModelConfig): string {
  const error = ModelConfigType.verify(ModelConfigType.fromObject(config));
  if (error) throw new Error(`invalid Triton config: ${error}`);
  return `# Triton model configuration (inference.ModelConfig), written by npm run export.\n# Edit freely: a later export keeps this file while it still matches the model.\n${formatTextFormat(config as Record<string, unknown>, ModelConfigType)}`;
}

/** Parse `config.pbtxt` text strictly (unknown fields are errors) into the config object. */
export function parseTritonConfig(text: string): ModelConfig {
  const config = parseTextFormat(text, ModelConfigType) as ModelConfig;
  const problems: string[] = [];
  if ((config.max_batch_size ?? 0) < 0) problems.push('max_batch_size must be ≥ 0');
  for (const t of [...(config.input ?? []), ...(config.output ?? [])]) {
    if (!t.name) problems.push('every input and output needs a name');
    if (!t.data_type || t.data_type === 'TYPE_INVALID') problems.push(`'${t.name}' needs a data_type`);
    if ((t.dims ?? []).some((d) => d < -1 || d === 0))
      problems.push(`'${t.name}' has a dimension that is not -1 or ≥ 1`);
  }
  if (config.dynamic_batching && !(config.max_batch_size && config.max_batch_size > 0))
    problems.push('dynamic_batching needs max_batch_size > 0');
  if (problems.length > 0) throw new Error(problems.join('; '));
  return config;
}

/** A tensor as a `config.pbtxt` declares it, in the Open Inference Protocol's terms. */
export interface TritonTensor {
  name: string;
  /** v2 datatype: 'FP32', 'INT64', 'BYTES' (Triton's TYPE_STRING), … */
  datatype: string;
  /** Dims as written: without the batch axis when maxBatchSize > 0; -1 is a free dimension. */
  dims: number[];
}

export type TritonVersionPolicy =
  | { kind: 'all' }
  | { kind: 'latest'; numVersions: number }
  | { kind: 'specific'; versions: number[] };

/** What a server needs from a model's `config.pbtxt`. */
export interface TritonSettings {
  /** 0: the model does not batch (requests carry full shapes); else the largest batch to form. */
  maxBatchSize: number;
  /** Dynamic batching's delay; undefined when the config asks for no dynamic batching. */
  maxQueueDelayMicroseconds: number | undefined;
  inputs: TritonTensor[];
  outputs: TritonTensor[];
  /** Which versions to serve; Triton's default (when unset) is the newest one only. */
  versionPolicy: TritonVersionPolicy;
  platform: string | undefined;
}

const v2Datatype = (dataType: string) => (dataType === 'TYPE_STRING' ? 'BYTES' : dataType.replace(/^TYPE_/, ''));

/**
 * Read a `config.pbtxt` for serving. Throws (with the line) on text Triton's schema subset here
 * doesn't accept; the caller decides whether to fall back to its defaults.
 *
 * @example
 * const { maxBatchSize, maxQueueDelayMicroseconds } = readTritonConfig(await readFile(path, 'utf8'));
 */
export function readTritonConfig(text: string): TritonSettings {
  const config = parseTritonConfig(text);
  const tensor = (t: { name: string; data_type: string; dims?: number[] }): TritonTensor => ({
    name: t.name,
    datatype: v2Datatype(t.data_type),
    dims: t.dims ?? [],
  });
  const policy = config.version_policy;
  return {
    maxBatchSize: config.max_batch_size ?? 0,
    maxQueueDelayMicroseconds: config.dynamic_batching
      ? (config.dynamic_batching.max_queue_delay_microseconds ?? 0)
      : undefined,
    inputs: (config.input ?? []).map(tensor),
    outputs: (config.output ?? []).map(tensor),
    versionPolicy: policy?.all
      ? { kind: 'all' }
      : policy?.specific
        ? { kind: 'specific', versions: policy.specific.versions ?? [] }
        : { kind: 'latest', numVersions: policy?.latest?.num_versions || 1 },
    platform: config.platform,
  };
}

/**
 * Why `config` can't describe `model` (empty when it can): every model input declared with the
 * same type, compatible dims (a config may fix a free dimension), and a batch axis only if the
 * model has one; declared outputs exist with the same type (a config may list a subset).
 */
export function configMismatches(config: ModelConfig, model: ModelProto): string[] {
  const { inputs, outputs } = graphTensors(model);
  const batching = (config.max_batch_size ?? 0) > 0;
  const problems: string[] = [];
  const check = (
    declared: { name: string; data_type: string; dims?: number[] },
    actual: GraphTensor | undefined,
    role: string,
  ) => {
    if (!actual) {
      problems.push(`the model has no ${role} '${declared.name}'`);
      return;
    }
    if (declared.data_type !== actual.dataType)
      problems.push(`${role} '${declared.name}' is ${actual.dataType}, the config says ${declared.data_type}`);
    const full = batching ? [-1, ...(declared.dims ?? [])] : (declared.dims ?? []);
    const fits =
      full.length === actual.shape.length &&
      full.every((d, i) => actual.shape[i] === -1 || d === actual.shape[i]) &&
      (!batching || actual.shape[0] === -1);
    if (!fits)
      problems.push(
        `${role} '${declared.name}' has shape [${actual.shape.join(', ')}], the config says [${full.join(', ')}]${batching ? ' (max_batch_size > 0 adds a batch axis)' : ''}`,
      );
  };
  for (const declared of config.input ?? [])
    check(
      declared,
      inputs.find((t) => t.name === declared.name),
      'input',
    );
  for (const actual of inputs)
    if (!(config.input ?? []).some((d) => d.name === actual.name))
      problems.push(`the config lacks input '${actual.name}'`);
  for (const declared of config.output ?? [])
    check(
      declared,
      outputs.find((t) => t.name === declared.name),
      'output',
    );
  return problems;
}
