/**
 * ModelInferRequest decoded without turning tensor values into JS numbers. protobufjs would decode
 * `contents.fp32_contents` into an Array, one number pushed at a time, which the request then copied twice
 * more (schema, Float32Array): ~50 ms and ~10 MB of garbage on the event loop for each 1 MiB request, and a
 * flood of them held health away for 6–11 s and RSS near 3 GB (an outside attack). Here `contents` is read as
 * bytes (a view of the message, which the wire format allows: a message field is length-delimited), and its
 * float32 values are little-endian bytes already — the same bytes `raw_input_contents` carries, checked by
 * the same decoder.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { walk } from './infer-wire.ts';

export interface InferTensorMessage {
  name: string;
  datatype: string;
  shape: number[];
  /** The InferTensorContents message's bytes, undecoded (empty when absent). */
  contents: Uint8Array;
}
export interface InferRequestMessage {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferTensorMessage[];
  outputs: { name: string }[];
  raw_input_contents: Uint8Array[];
}

const PROTO = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));

/** The request type with InferInputTensor.contents declared `bytes` (its wire bytes are the same). */
let requestType: protobuf.Type | undefined;
function requestWithRawContents(): protobuf.Type {
  if (requestType) return requestType;
  const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
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
 * The float32 values of a tensor's contents as little-endian bytes (a view when they came as one packed
 * field, the usual case), and the other `*_contents` fields it carried. Packed and unpacked fields may be
 * mixed and repeated, as protobuf allows; values come in wire order.
 */
export function fp32ContentsBytes(contents: Uint8Array): { bytes: Uint8Array; others: string[] } {
  const chunks: Uint8Array[] = [];
  const others = new Set<string>();
  walk(contents, 0, contents.length, (field, from, to) => {
    if (field === 6) chunks.push(contents.subarray(from, to));
    else if (field >= 1 && field <= 8) others.add(`${CONTENTS_FIELDS[field]}_contents`);
  });
  const bytes = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
  return { bytes, others: [...others] };
}
