/**
 * The explain variant (every layer's output as a graph output), the explainer's stage structure and the
 * receptive fields — checked against the architectures written out by hand, a direct convolution of the
 * input with conv1's weights, and the unchanged model's own outputs in onnxruntime-node.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, IMAGE_SIDE, MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import { makeDeployable } from '../core/deploy/deployable.ts';
import { explainModel } from '../core/deploy/explain.ts';
import { type BlockStage, explainStages } from '../core/deploy/explain-structure.ts';
import { cellField, receptiveFields } from '../core/deploy/receptive-field.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { decodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';
import { fromTensorProto } from '../onnx/tensor.ts';
import { runModel } from './helpers/ort.ts';

const trainedCnn = () => decodeModel(readFileSync('test/fixtures/models/cnn/1/model.onnx'));

/** A zoo model as `npm run export` writes it (fresh seeded weights: the structure is what matters here). */
function exported(name: keyof typeof ZOO): ModelProto {
  const { model } = inferenceModel(ZOO[name].build(), { seed: 1 });
  return makeDeployable(model, { mean: MNIST_MEAN, std: MNIST_STD, metadata: {} }).model;
}

/** A digit-like input: a bright bar and a ring. */
function sampleInput(): Float32Array {
  const x = new Float32Array(IMAGE_PIXELS);
  for (let y = 0; y < IMAGE_SIDE; y++)
    for (let c = 0; c < IMAGE_SIDE; c++) {
      const r = Math.hypot(y - 14, c - 12);
      if ((r > 5 && r < 8) || (c >= 18 && c <= 20 && y > 5 && y < 24)) x[y * IMAGE_SIDE + c] = 1;
    }
  return x;
}

describe('explainModel', () => {
  it('lists the simple CNN’s 8 layer outputs, by hand: conv1, pool, relu, conv2, pool, relu, fc, softmax', () => {
    const { layers } = explainModel(trainedCnn());
    expect(layers.map((l) => l.module ?? l.op)).toEqual([
      'conv1',
      'MaxPool',
      'Relu',
      'conv2',
      'MaxPool',
      'Relu',
      'fc',
      'Softmax',
    ]);
  });

  it('adds them as graph outputs that ORT computes, with the same logits and probabilities as the model', async () => {
    const source = trainedCnn();
    const { model, layers } = explainModel(source);
    expect(source.graph?.output?.length).toBe(2); // pure: the source is untouched
    const input = sampleInput();
    const feeds = { input: { dims: [1, 1, IMAGE_SIDE, IMAGE_SIDE], data: input } };
    const [plain, explained] = await Promise.all([runModel(source, feeds), runModel(model, feeds)]);
    for (const layer of layers) expect(explained[layer.output], layer.output).toBeDefined();
    expect(explained.logits?.data).toEqual(plain.logits?.data);
    expect(explained.probabilities?.data).toEqual(plain.probabilities?.data);

    // conv1's feature maps equal a direct 5×5 convolution of the input with conv1's (folded) weights.
    const conv1 = layers[0];
    const weight = fromTensorProto(source.graph?.initializer?.find((t) => t.name === conv1?.weight) ?? {});
    const bias = fromTensorProto(source.graph?.initializer?.find((t) => t.name === `${conv1?.weight}_bias`) ?? {});
    const maps = explained[conv1?.output ?? '']?.data as Float32Array;
    expect(explained[conv1?.output ?? '']?.dims).toEqual([1, 10, 24, 24]);
    for (const [c, y, x] of [
      [0, 0, 0],
      [3, 10, 7],
      [9, 23, 23],
      [5, 12, 14],
    ] as const) {
      let sum = bias.data[c] as number;
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 5; j++)
          sum += (weight.data[c * 25 + i * 5 + j] as number) * (input[(y + i) * IMAGE_SIDE + x + j] as number);
      expect(maps[c * 576 + y * 24 + x]).toBeCloseTo(sum, 4);
    }
    // The fc layer's output is the logits.
    expect(explained[layers[6]?.output ?? '']?.data).toEqual(plain.logits?.data);
  });

  it('counts every computing node of inception and resnet, by hand from their architectures', () => {
    // inception: conv1, pool, relu; incep1 = 7 convs + avgpool; conv2, pool, relu; incep2 the same; fc; softmax.
    expect(explainModel(exported('inception')).layers).toHaveLength(3 + 8 + 3 + 8 + 2);
    // resnet: conv1, relu, pool; block = conv, relu, conv, add, relu; conv2, relu, pool; block; fc; softmax.
    expect(explainModel(exported('resnet')).layers).toHaveLength(3 + 5 + 3 + 5 + 2);
  });
});

describe('explainStages', () => {
  const blocks = (model: ModelProto) => explainStages(model).filter((s): s is BlockStage => s.kind === 'block');

  it('shows the Inception modules as four branches side by side, joined by Concat', () => {
    const found = blocks(exported('inception'));
    expect(found).toHaveLength(2);
    for (const [k, block] of found.entries()) {
      expect(block.joinOp).toBe('Concat');
      expect(block.join).toBeUndefined();
      expect(block.branches.map((b) => b.map((l) => l.module ?? l.op))).toEqual([
        [`incep${k + 1}.branch1x1`],
        [`incep${k + 1}.branch5x5_1`, `incep${k + 1}.branch5x5_2`],
        [`incep${k + 1}.branch3x3_1`, `incep${k + 1}.branch3x3_2`, `incep${k + 1}.branch3x3_3`],
        ['AveragePool', `incep${k + 1}.branch_pool`],
      ]);
    }
  });

  it('shows a residual block as its branch beside the identity shortcut ([]), joined by the Add', () => {
    const stages = explainStages(exported('resnet'));
    const found = stages.filter((s): s is BlockStage => s.kind === 'block');
    expect(found.map((b) => b.branches.map((br) => br.map((l) => l.module ?? l.op)))).toEqual([
      [['rblock1.conv1', 'Relu', 'rblock1.conv2'], []],
      [['rblock2.conv1', 'Relu', 'rblock2.conv2'], []],
    ]);
    expect(found.map((b) => b.join?.op)).toEqual(['Add', 'Add']);
    // Every layer appears exactly once.
    const shown = stages.flatMap((s) =>
      s.kind === 'layer' ? [s.layer] : [...s.branches.flat(), ...(s.join ? [s.join] : [])],
    );
    expect(shown.map((l) => l.output)).toEqual(
      expect.arrayContaining(explainModel(exported('resnet')).layers.map((l) => l.output)),
    );
    expect(shown).toHaveLength(18);
  });

  it('draws the conv-shortcut variant with its 1×1 conv as the second branch', () => {
    const found = blocks(exported('resnet-convshortcut'));
    expect(found[0]?.branches.map((br) => br.map((l) => l.module ?? l.op))).toEqual([
      ['rblock1.conv1', 'Relu', 'rblock1.conv2'],
      ['rblock1.conv3'],
    ]);
  });
});

describe('receptiveFields', () => {
  it('grows through the simple CNN as worked out by hand: 5, 6, 14, 16 pixels; strides 1, 2, 2, 4', () => {
    const model = trainedCnn();
    const fields = receptiveFields(model);
    const { layers } = explainModel(model);
    const rows = layers.slice(0, 6).map((l) => fields.get(l.output)?.[0]);
    // conv5: 1 + 4 = 5; pool2: 5 + 1 = 6, stride 2; relu: same; conv5: 6 + 4·2 = 14; pool2: 14 + 1·2 = 16, stride 4.
    expect(rows.map((a) => a?.size)).toEqual([5, 6, 6, 14, 16, 16]);
    expect(rows.map((a) => a?.jump)).toEqual([1, 2, 2, 2, 4, 4]);
    expect(fields.get(layers[6]?.output ?? '')).toBeUndefined(); // fc sees the whole image
    // conv2's cell (3, 5) sees rows 6…19 and columns 10…23 of the input.
    const conv2 = fields.get(layers[3]?.output ?? '');
    expect(conv2 && cellField(conv2, 3, 5, IMAGE_SIDE)).toEqual({ top: 6, bottom: 19, left: 10, right: 23 });
  });

  it('follows padding and unions the paths of a residual block', () => {
    const resnet = exported('resnet');
    const fields = receptiveFields(resnet);
    const add = explainModel(resnet).layers.find((l) => l.op === 'Add');
    // After conv5 → relu → pool2: size 6, stride 2. Two padded 3×3 convs: 6 + 2·2 + 2·2 = 14, offset −2 − 2 = −4.
    // The identity shortcut (size 6, offset 0) lies inside it, so the Add sees 14 pixels from −4.
    expect(fields.get(add?.output ?? '')?.[1]).toEqual({ jump: 2, size: 14, offset: -4 });
    const inception = exported('inception');
    const branch = explainModel(inception).layers.find((l) => l.module === 'incep1.branch5x5_2');
    expect(receptiveFields(inception).get(branch?.output ?? '')?.[0]).toEqual({ jump: 2, size: 14, offset: -4 });
  });
});
