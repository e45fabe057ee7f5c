/** ONNX bytes ⇄ ModelProto, via protobufjs and our schema. */
import { type ModelProto, ModelProtoType } from './schema.ts';

/** Serialize a model to the .onnx wire format. */
export function encodeModel(model: ModelProto): Uint8Array {
  const message = ModelProtoType.fromObject(model);
  return ModelProtoType.encode(message).finish();
}

/** Parse .onnx bytes. int64 fields come back as numbers, repeated fields always as arrays. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let message: ReturnType<typeof ModelProtoType.decode>;
  try {
    message = ModelProtoType.decode(bytes);
  } catch (error) {
    throw new Error(`not an ONNX model: ${(error as Error).message}`);
  }
  const model = ModelProtoType.toObject(message, { longs: Number, arrays: true, defaults: false }) as ModelProto;
  if (!model.graph) throw new Error('not an ONNX model: it has no graph');
  return model;
}
