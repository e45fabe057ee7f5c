import protobuf from 'protobufjs';
import { grpcProtoRoot } from './proto.ts';

export interface InferTensorMessage {
  name: string;
  datatype: string;
  shape: number[];
  /** The InferTensorContents message's bytes, undecoded (empty when absent). */
  contents: Uint8Array;
  /** Its parameters map (empty when none). */
  parameters?: Record<string, unknown>;
}
export interface InferRequestMessage {
  model_name: string;
  model_version: string;
  id: string;
  /** The request's parameters map (empty when none). */
  parameters?: Record<string, unknown>;
  inputs: InferTensorMessage[];
  /** `parameters`: the request's map (empty when none; checked for extensions this server lacks). */
  outputs: { name: string; parameters?: Record<string, unknown> }[];
  raw_input_contents: Uint8Array[];
}

/** The request type with InferInputTensor.contents declared `bytes` (its wire bytes are the same). */
let requestType: protobuf.Type | undefined;
function requestWithRawContents(): protobuf.Type {
  if (requestType) return requestType;
  const root = grpcProtoRoot();
  const tensor = root.lookupType('inference.ModelInferRequest.InferInputTensor');
  tensor.remove(tensor.fields.contents as protobuf.Field);
  tensor.add(new protobuf.Field('contents', 5, 'bytes'));
  requestType = root.lookupType('inference.ModelInferRequest');
  return requestType;
}

/** The message, as @grpc/proto-loader would give it but with `contents` as bytes. Throws on malformed bytes. */
export function decodeInferRequest(bytes: Uint8Array): InferRequestMessage {
  const type = requestWithRawContents();
  return type.toObject(type.decode(bytes), { longs: Number, defaults: true }) as InferRequestMessage;
}

/** InferTensorContents's fields by number, for messages. */
const CONTENTS_FIELDS = ['', 'bool', 'int', 'int64', 'uint', 'uint64', 'fp32', 'fp64', 'bytes'];

/**
 * The float32 values of a tensor's contents as little-endian bytes — a view when they came as one packed
 * field (the usual case), else gathered in wire order, as protobuf allows packed and unpacked fields mixed
 * and repeated — and the other `*_contents` fields it carried. One tight pass with no callback or object per
 * field: 209,000 unpacked floats fit in a 1 MiB message. The wire walk (infer-wire.ts) has checked the bytes.
 */
export function fp32ContentsBytes(contents: Uint8Array): { bytes: Uint8Array; others: string[] } {
  const others = new Set<string>();
  let first: [number, number] | undefined;
  let out: Uint8Array | undefined; // from the second fp32 field on; the floats take fewer bytes than the fields
  let at = 0;
  let i = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = contents[i++] as number;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
  };
  const take = (from: number, to: number) => {
    if (!first) {
      first = [from, to];
      return;
    }
    if (!out) {
      out = new Uint8Array(contents.length);
      out.set(contents.subarray(first[0], first[1]));
      at = first[1] - first[0];
    }
    if (to - from > 16) {
      out.set(contents.subarray(from, to), at);
      at += to - from;
    } else for (let k = from; k < to; k++) out[at++] = contents[k] as number;
  };
  while (i < contents.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      varint();
      if (field >= 1 && field <= 8) others.add(`${CONTENTS_FIELDS[field]}_contents`);
      continue;
    }
    const length = wire === 1 ? 8 : wire === 5 ? 4 : varint();
    const from = i;
    i += length;
    if (field === 6) take(from, i);
    else if (field >= 1 && field <= 8) others.add(`${CONTENTS_FIELDS[field]}_contents`);
  }
  const bytes = out ? out.subarray(0, at) : first ? contents.subarray(first[0], first[1]) : new Uint8Array(0);
  return { bytes, others: [...others] };
}
