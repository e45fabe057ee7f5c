/**
 * Triton's config.pbtxt: the text-format reader and writer against the ModelConfig schema subset, the
 * config derived from a model (ours and one made elsewhere), and the export step that writes it.
 * Expected configs are written out by hand from Triton's documentation, not produced by the code.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { exportRun } from '../export/export-run.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import {
  configMismatches,
  formatTritonConfig,
  parseTritonConfig,
  readTritonConfig,
  tritonConfigFor,
} from '../node/triton/config.ts';
import { ModelConfigType } from '../node/triton/schema.ts';
import { parseTextFormat } from '../node/triton/text-format.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';
import { trainRun } from '../train/loop.ts';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** Parse with our reader, then let protobufjs check it against the schema and round-trip it through bytes. */
function verifyWithSchema(text: string): Record<string, unknown> {
  const object = parseTextFormat(text, ModelConfigType);
  const message = ModelConfigType.fromObject(object);
  expect(ModelConfigType.verify(message)).toBeNull();
  const decoded = ModelConfigType.decode(ModelConfigType.encode(message).finish());
  // Nothing the reader produced was dropped by fromObject (it ignores keys it doesn't know); proto3 zeros
  // aren't on the wire, so compare with the schema's defaults filled in.
  expect(ModelConfigType.toObject(decoded, { enums: String, longs: Number, defaults: true })).toMatchObject(object);
  return object;
}

/** What Triton's docs say an ONNX classifier batching on axis 0 needs, for our exported models. */
const OUR_MODEL_CONFIG = {
  name: 'cnn',
  platform: 'onnxruntime_onnx',
  version_policy: { all: {} },
  max_batch_size: 64,
  input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [1, 28, 28] }],
  output: [
    { name: 'logits', data_type: 'TYPE_FP32', dims: [10] },
    { name: 'probabilities', data_type: 'TYPE_FP32', dims: [10] },
  ],
  dynamic_batching: { max_queue_delay_microseconds: 2000 },
};

const torchModel = () => decodeModel(readFileSync('test/fixtures/torch-cnn-opset13.onnx'));

/** The torch fixture as someone else might ship it: batch fixed at 1, tensors named x and y. */
function staticBatchModel(): ModelProto {
  const model = torchModel();
  const graph = model.graph as NonNullable<ModelProto['graph']>;
  const rename = new Map([
    ['input', 'x'],
    ['logits', 'y'],
  ]);
  for (const node of graph.node ?? []) {
    node.input = node.input.map((n) => rename.get(n) ?? n);
    node.output = node.output.map((n) => rename.get(n) ?? n);
  }
  for (const value of [...(graph.input ?? []), ...(graph.output ?? [])]) {
    value.name = rename.get(value.name) ?? value.name;
    const first = value.type?.tensor_type?.shape?.dim?.[0];
    if (first) {
      delete first.dim_param;
      first.dim_value = 1;
    }
  }
  return model;
}

describe('protobuf text format against the ModelConfig schema', () => {
  it('reads what Triton users write: comments, both list styles, colon before a block, <> blocks', () => {
    const text = `
      # a hand-written config
      name: "digits"   platform: 'onnxruntime_onnx'
      max_batch_size: 8
      input: [ { name: "input" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 1, 28, 28 ] } ]
      output { name: "logits", data_type: TYPE_FP32, dims: 10 }
      output < name: "probabilities" data_type: TYPE_FP32 dims: [10] >
      instance_group [ { kind: KIND_CPU count: 2 } ]
      version_policy: { latest: { num_versions: 2 } }
      dynamic_batching { preferred_batch_size: [4, 8] max_queue_delay_microseconds: 100 }
    `;
    expect(verifyWithSchema(text)).toEqual({
      name: 'digits',
      platform: 'onnxruntime_onnx',
      max_batch_size: 8,
      input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [1, 28, 28] }],
      output: [
        { name: 'logits', data_type: 'TYPE_FP32', dims: [10] },
        { name: 'probabilities', data_type: 'TYPE_FP32', dims: [10] },
      ],
      instance_group: [{ kind: 'KIND_CPU', count: 2 }],
      version_policy: { latest: { num_versions: 2 } },
      dynamic_batching: { preferred_batch_size: [4, 8], max_queue_delay_microseconds: 100 },
    });
  });

  it('uses model_config.proto field numbers on the wire', () => {
    // Field 4 varint (0x20) = 64; field 2 length-delimited (0x12); field 11 message (0x5a) holding field 2 varint.
    const bytes = (o: Record<string, unknown>) => [...ModelConfigType.encode(ModelConfigType.fromObject(o)).finish()];
    expect(bytes({ max_batch_size: 64 })).toEqual([0x20, 64]);
    expect(bytes({ platform: 'x' })).toEqual([0x12, 1, 0x78]);
    expect(bytes({ dynamic_batching: { max_queue_delay_microseconds: 5 } })).toEqual([0x5a, 2, 0x10, 5]);
  });

  it.each([
    ['max_batch: 8', /line 1: unknown field 'max_batch' in ModelConfig/],
    ['input { name: "a" shape: [1] }', /unknown field 'shape' in ModelInput/],
    ['parameters { key: "a" value: { string_value: "b" } }', /unknown field 'parameters'/],
    ['max_batch_size: "8"', /must be an integer/],
    ['max_batch_size: 3000000000', /out of range for int32/],
    ['platform: "a" platform: "b"', /'platform' takes one value/],
    ['input { data_type: TYPE_FLOAT32 }', /must be one of TYPE_INVALID/],
    ['name: "unterminated', /unterminated string/],
    ['input { name: "a"', /expected '}'/],
    ['max_batch_size 8', /expected ':' after 'max_batch_size'/],
    ['version_policy { all { } latest { } }', /are alternatives/],
    ['\n\nname: @', /line 3: unexpected character "@"/],
  ])('refuses %j', (text, message) => {
    expect(() => parseTextFormat(text, ModelConfigType)).toThrow(message);
  });

  it('refuses configs Triton would refuse', () => {
    expect(() => parseTritonConfig('max_batch_size: -1')).toThrow(/max_batch_size must be ≥ 0/);
    expect(() => parseTritonConfig('input { name: "a" data_type: TYPE_FP32 dims: [0] }')).toThrow(/dimension/);
    expect(() => parseTritonConfig('dynamic_batching { }')).toThrow(/needs max_batch_size > 0/);
  });
});

describe('the config a model gets', () => {
  it('a batching model: dims without the batch axis, dynamic batching, every version; written text reads back', () => {
    const model = torchModel();
    const config = tritonConfigFor(model, 'torchcnn');
    expect(config).toEqual({
      ...OUR_MODEL_CONFIG,
      name: 'torchcnn',
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [10] }],
    });
    const text = formatTritonConfig(config);
    expect(text).toContain('platform: "onnxruntime_onnx"\n');
    expect(text).toContain('dims: [ 1, 28, 28 ]');
    expect(verifyWithSchema(text)).toEqual(config);
    expect(configMismatches(parseTritonConfig(text), model)).toEqual([]);
  });

  it('a model made elsewhere with a static batch of 1 and its own names: max_batch_size 0 and full dims', async () => {
    const model = staticBatchModel();
    const config = tritonConfigFor(model, 'theirs');
    expect(config).toEqual({
      name: 'theirs',
      platform: 'onnxruntime_onnx',
      version_policy: { all: {} },
      max_batch_size: 0,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [1, 1, 28, 28] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [1, 10] }],
    });
    verifyWithSchema(formatTritonConfig(config));
    // The config tells the truth: ORT runs the model with exactly those full shapes.
    const session = await ort.InferenceSession.create(encodeModel(model));
    const result = await session.run({ x: new ort.Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) });
    expect(result.y?.dims).toEqual([1, 10]);
    await session.release();
    // …and a batching config would not.
    expect(configMismatches(tritonConfigFor(torchModel(), 'theirs'), model).join('\n')).toMatch(
      /the model has no input 'input'/,
    );
  });

  it('readTritonConfig gives the serving settings', () => {
    expect(readTritonConfig(formatTritonConfig(OUR_MODEL_CONFIG))).toEqual({
      maxBatchSize: 64,
      maxQueueDelayMicroseconds: 2000,
      inputs: [{ name: 'input', datatype: 'FP32', dims: [1, 28, 28] }],
      outputs: [
        { name: 'logits', datatype: 'FP32', dims: [10] },
        { name: 'probabilities', datatype: 'FP32', dims: [10] },
      ],
      versionPolicy: { kind: 'all' },
      platform: 'onnxruntime_onnx',
    });
    // Triton's defaults: the newest version only, no dynamic batching.
    const bare = readTritonConfig('max_batch_size: 0 input { name: "x" data_type: TYPE_STRING dims: [-1] }');
    expect(bare).toMatchObject({
      maxBatchSize: 0,
      maxQueueDelayMicroseconds: undefined,
      versionPolicy: { kind: 'latest', numVersions: 1 },
      inputs: [{ name: 'x', datatype: 'BYTES', dims: [-1] }],
    });
  });
});

describe('export writes config.pbtxt beside the versions', () => {
  it('writes it, keeps a user-edited one that still matches, and refuses an export it contradicts', async () => {
    const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
    const data = { train: take(train, 1000), test: take(test, 500) as Dataset };
    const run = tmp('run-triton-');
    await trainRun({
      config: { ...TUTORIAL_RECIPE, model: 'cnn', epochs: 1, lr: 0.05, batchSize: 32 },
      dir: run,
      data,
    });
    const out = tmp('models-');
    const configPath = join(out, 'cnn', 'config.pbtxt');

    const first = await exportRun({ run, out, test: data.test });
    expect(first.tritonConfig).toEqual({ path: configPath, action: 'written' });
    expect(verifyWithSchema(readFileSync(configPath, 'utf8'))).toEqual(OUR_MODEL_CONFIG);

    // The user's edit (smaller batches, a comment) survives the next export byte for byte.
    const edited = readFileSync(configPath, 'utf8').replace('max_batch_size: 64', 'max_batch_size: 8 # GPU memory');
    writeFileSync(configPath, edited);
    const second = await exportRun({ run, out, test: data.test, version: 2 }); // the same checkpoint, deliberately
    expect(second.tritonConfig).toEqual({ path: configPath, action: 'kept' });
    expect(readFileSync(configPath, 'utf8')).toBe(edited);

    // A config that no longer describes the model stops the export before anything is written.
    const wrong = edited.replace('name: "input"', 'name: "pixels"');
    writeFileSync(configPath, wrong);
    await expect(exportRun({ run, out, test: data.test, version: 3 })).rejects.toThrow(
      /config\.pbtxt does not describe this model \(the model has no input 'pixels'; the config lacks input 'input'\); nothing written/,
    );
    expect(existsSync(join(out, 'cnn', '3'))).toBe(false);
    expect(readFileSync(configPath, 'utf8')).toBe(wrong);

    // One with options outside our schema subset is kept unchecked, and the export says so.
    const extended = `${edited}parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n`;
    writeFileSync(configPath, extended);
    const third = await exportRun({ run, out, test: data.test, version: 3 });
    expect(third.tritonConfig.action).toBe('kept');
    expect(third.tritonConfig.warning).toMatch(/unchecked: line \d+: unknown field 'parameters'/);
    expect(readFileSync(configPath, 'utf8')).toBe(extended);
  }, 120_000);
});
