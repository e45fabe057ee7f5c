/**
 * The embedding view's features (core/deploy/penultimate.ts) are what the classifier reads: for the cnn
 * fixture, the Flatten output [N, 320], and fc's weights applied to them give the model's own logits;
 * for the torch export, the Reshape output of its Shape→…→Reshape chain.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { expect, it } from 'vitest';
import { IMAGE_PIXELS, NUM_CLASSES } from '../core/contract.ts';
import { penultimateModel } from '../core/deploy/penultimate.ts';
import { loadMnist } from '../node/mnist.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { fromTensorProto } from '../onnx/tensor.ts';

it("the cnn's penultimate features, times fc, are its logits", async () => {
  const source = decodeModel(readFileSync('test/fixtures/models/cnn/1/model.onnx'));
  const { model, features, classifier } = penultimateModel(source);
  expect([features, classifier]).toEqual(['Flatten_6_out0', 'Gemm_7']);
  const test = await loadMnist('test');
  const n = 20;
  const x = Float32Array.from(test.images.subarray(0, n * IMAGE_PIXELS), (v) => v / 255);
  const session = await ort.InferenceSession.create(encodeModel(model));
  const out = await session.run({ input: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
  await session.release();
  const f = out[features] as ort.Tensor;
  expect(f.dims).toEqual([n, 320]);
  const init = (name: string) =>
    fromTensorProto(source.graph?.initializer?.find((t) => t.name === name) ?? {}).data as Float32Array;
  const [w, b] = [init('fc.weight'), init('fc.bias')];
  const logits = out.logits?.data as Float32Array;
  const data = f.data as Float32Array;
  for (let i = 0; i < n; i++)
    for (let c = 0; c < NUM_CLASSES; c++) {
      let z = b[c] as number;
      for (let k = 0; k < 320; k++) z += (data[i * 320 + k] as number) * (w[c * 320 + k] as number);
      expect(Math.abs(z - (logits[i * NUM_CLASSES + c] as number))).toBeLessThan(1e-4);
    }
});

it('a torch export: the Reshape output its Gemm reads', () => {
  const { features } = penultimateModel(decodeModel(readFileSync('test/fixtures/torch-cnn-opset13.onnx')));
  expect(features).toBe('/Reshape_output_0');
});
