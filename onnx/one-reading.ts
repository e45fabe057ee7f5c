/**
 * Bytes that every protobuf parser reads the same way. Two parsers of one .onnx file can disagree: a singular
 * field written twice is merged by protobuf's C++ parser (ORT's) when it is a message and replaced when it is
 * not, where protobufjs (ours) keeps only the last; and a value a closed proto2 enum does not know leaves the
 * C++ field as it was (ONNX's `data_location`: 1 then 5 is EXTERNAL there, 5 here). A check made on our
 * reading — which files a model's external data names — would then not be the check of what ORT loads. So a
 * model file the server loads must write each singular field at most once, with a known enum value.
 */
import protobuf from 'protobufjs';
import { ModelProtoType } from './schema.ts';

export class AmbiguousModelError extends Error {
  override name = 'AmbiguousModelError';
}

/** Throws unless no singular field of any message in `bytes` (an onnx.ModelProto) is written twice. */
export function assertOneReading(bytes: Uint8Array): void {
  walk(protobuf.Reader.create(bytes), bytes.length, ModelProtoType, 'ModelProto', 0);
}

const TENSOR = ModelProtoType.lookupType('onnx.TensorProto');
const MAX_DEPTH = 100; // protobufjs's own recursion limit for nested messages

function walk(reader: protobuf.Reader, end: number, type: protobuf.Type, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new AmbiguousModelError(`${path}: messages nested more than ${MAX_DEPTH} deep`);
  const seen = new Set<number>();
  while (reader.pos < end) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    const field = type.fieldsById[id];
    if (!field) {
      reader.skipType(wire);
      continue;
    }
    const where = `${path}.${field.name}`;
    if (!field.repeated) {
      if (seen.has(id)) throw new AmbiguousModelError(`${where} is written more than once`);
      seen.add(id);
    }
    field.resolve();
    if (field.resolvedType instanceof protobuf.Type && wire === 2) {
      const length = reader.uint32();
      walk(reader, reader.pos + length, field.resolvedType, where, depth + 1);
    } else if (type === TENSOR && field.name === 'data_location' && wire === 0) {
      // ONNX's DataLocation (our schema reads it as int32): DEFAULT 0, EXTERNAL 1.
      const value = reader.int32();
      if (value !== 0 && value !== 1)
        throw new AmbiguousModelError(`${where} holds ${value}, neither DEFAULT nor EXTERNAL`);
    } else {
      reader.skipType(wire);
    }
  }
  if (reader.pos !== end) throw new AmbiguousModelError(`${path}: a field runs past its message`);
}
