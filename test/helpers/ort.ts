/** Run an in-memory ModelProto in a real onnxruntime-node session. */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../onnx/codec.ts';
import type { ModelProto } from '../../onnx/schema.ts';

export async function runModel(
  model: ModelProto,
  feeds: Record<string, { dims: number[]; data: Float32Array | BigInt64Array }>,
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, { dims, data }] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor(data instanceof BigInt64Array ? 'int64' : 'float32', data, dims);
    }
    return await session.run(inputs);
  } finally {
    await session.release();
  }
}
