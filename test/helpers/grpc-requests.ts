/** ModelInfer requests as gRPC clients encode them, and a model whose answers are large, for the gRPC budget tests. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { oddModel } from '../../testkit/odd-models.ts';

const Request = new protobuf.Root()
  .loadSync('serve/grpc/grpc_predict_v2.proto', { keepCase: true })
  .lookupType('inference.ModelInferRequest');

/** A ModelInferRequest (unframed) for `images` zero images of `model`, as raw_input_contents. */
export function inferRequestBytes(model: string, images: number): Buffer {
  return Buffer.from(
    Request.encode(
      Request.fromObject({
        model_name: model,
        inputs: [{ name: 'input', datatype: 'FP32', shape: [images, 1, 28, 28] }],
        raw_input_contents: [Buffer.alloc(images * 784 * 4)],
      }),
    ).finish(),
  );
}

/** Adds `wide` to the repository at `root`: 4,096 values an image, so a 64-image answer is 1 MiB of raw floats. */
export function addWideModel(root: string): void {
  mkdirSync(join(root, 'wide', '1'), { recursive: true });
  writeFileSync(join(root, 'wide', '1', 'model.onnx'), oddModel({ wideOutput: 4086 }));
}
