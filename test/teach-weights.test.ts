/**
 * "Teach it your handwriting" starts from the served model's weights: the deployable model's initializers
 * mapped back to the zoo's parameters (undoing export's normalization fold) must rebuild a training-side
 * forward pass that gives the served model's logits, on MNIST test digits.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { IMAGE_PIXELS } from '../core/contract.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { loadMnist, normalize, take } from '../node/mnist.ts';
import { encodeModel } from '../onnx/codec.ts';
import { NotTrainableError, trainableFromDeployable } from '../web-demo/src/teach/weights.ts';

async function logits(bytes: Uint8Array, images: Float32Array, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', images, [n, 1, 28, 28]) });
  await session.release();
  return out.logits?.data as Float32Array;
}

describe('trainableFromDeployable', () => {
  it('recovers cnn’s parameters from the exported model (normalization fold undone)', async () => {
    const bytes = readFileSync('test/fixtures/models/cnn/1/model.onnx');
    const { name, weights } = trainableFromDeployable(bytes);
    expect(name).toBe('cnn');
    expect([...weights.keys()]).toEqual([
      'conv1.weight',
      'conv1.bias',
      'conv2.weight',
      'conv2.bias',
      'fc.weight',
      'fc.bias',
    ]);
    const test = take(await loadMnist('test'), 200);
    const served = await logits(
      bytes,
      Float32Array.from(test.images, (v) => v / 255),
      test.count,
    );
    const { model } = inferenceModel(ZOO.cnn.build(), { weights });
    const rebuilt = await logits(encodeModel(model), normalize(test.images), test.count);
    let max = 0;
    for (let i = 0; i < served.length; i++)
      max = Math.max(max, Math.abs((served[i] as number) - (rebuilt[i] as number)));
    expect(max).toBeLessThan(1e-3);
    expect(served.length).toBe(200 * 10);
    expect(test.images.length).toBe(200 * IMAGE_PIXELS);
  });

  it('refuses models it cannot map back, with a reason', () => {
    expect(() => trainableFromDeployable(readFileSync('test/fixtures/torch-cnn-opset13.onnx'))).toThrow(
      NotTrainableError,
    );
  });
});
