/**
 * One v2 inference, from body to answer: the request read as JSON or as Triton's binary tensor extension
 * (binary-tensors.ts), its tensor checked against the model's own input, and the outputs shaped back as
 * JSON `data` or raw bytes after the JSON header — the same checks and limits either way.
 */

import type { Context } from 'hono';
import type { Dim } from '../onnx/builder.ts';
import type { ValueDescription } from '../onnx/describe.ts';
import { sizeOf } from '../onnx/tensor.ts';
import {
  binaryInputs,
  binaryResponseBody,
  decodeFp32,
  encodeFp32,
  HEADER_LENGTH,
  splitBinaryBody,
  wantsBinary,
} from './binary-tensors.ts';
import { describeValue, readBody, readJson, zodMessage } from './body.ts';
import { HttpError } from './errors.ts';
import { jsonAnswerBytes } from './json-answer.ts';
import type { ServedVersion } from './repository.ts';
import { assertBatchSize } from './routes/lookup.ts';
import { type InferRequest, InferRequestSchema } from './schemas.ts';

/** ONNX element types → v2 datatypes (the contract makes every served tensor FLOAT). */
export const DATATYPES: Record<string, string> = { FLOAT: 'FP32', FLOAT16: 'FP16', DOUBLE: 'FP64', INT64: 'INT64' };
export const v2Shape = (shape: Dim[]) => shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
export const tensorMetadata = (v: ValueDescription) => ({
  name: v.name,
  datatype: DATATYPES[v.dataType] ?? v.dataType,
  shape: v2Shape(v.shape),
});

/** A checked request: its JSON part and, per input, the raw bytes it sent after the header (if any). */
export interface V2Request {
  body: InferRequest;
  binary: (Uint8Array | undefined)[];
}

/** Read an inference request: binary when `Inference-Header-Content-Length` is present, JSON otherwise. */
export async function readInferRequest(c: Context, limit: number): Promise<V2Request> {
  const headerLength = c.req.header(HEADER_LENGTH);
  const { json, tail } =
    headerLength === undefined
      ? { json: await readJson(c, limit), tail: undefined }
      : splitBinaryBody(await readBody(c, limit), headerLength);
  const parsed = InferRequestSchema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
  return { body: parsed.data, binary: binaryInputs(parsed.data.inputs, tail) };
}

/**
 * Flatten v2 tensor data (flat, or nested row-major to the tensor's rank) into float32 — iteratively,
 * so hostile nesting can't exhaust the stack, and refusing anything deeper than the shape allows.
 */
export function flattenTensorData(data: unknown[], rank: number, expected: number): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const stack: { items: unknown[]; index: number }[] = [{ items: data, index: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { items: unknown[]; index: number };
    if (top.index >= top.items.length) {
      stack.pop();
      continue;
    }
    const value = top.items[top.index++];
    if (Array.isArray(value)) {
      if (stack.length >= rank)
        throw new HttpError(400, 'invalid_shape', `data is nested deeper than the tensor's ${rank} dimensions`);
      stack.push({ items: value, index: 0 });
    } else if (typeof value === 'number' && Number.isFinite(Math.fround(value))) {
      if (n >= expected)
        throw new HttpError(400, 'invalid_shape', `data has more than the ${expected} values of its shape`);
      out[n++] = value;
    } else {
      throw new HttpError(
        400,
        'invalid_value',
        typeof value === 'number'
          ? `data[${n}] is ${value}, outside float32's range (±3.4028235e38): FP32 data must be float32 numbers`
          : `data[${n}] is ${describeValue(value)}; FP32 data must be numbers`,
      );
    }
  }
  if (n !== expected) throw new HttpError(400, 'invalid_shape', `data has ${n} values; its shape needs ${expected}`);
  return out;
}

/** Tensor parameters of protocol extensions this server does not implement, and what each asks for. */
const UNSUPPORTED_PARAMETERS: Record<string, string> = {
  shared_memory_region: 'shared memory (the shared-memory extensions)',
  shared_memory_byte_size: 'shared memory (the shared-memory extensions)',
  shared_memory_offset: 'shared memory (the shared-memory extensions)',
  classification: 'class labels (the classification extension)',
};

/**
 * Refuses a tensor's parameter this server does not implement, by name: answering as if it were absent would
 * send the data somewhere the client does not look (an output asked into a shared-memory region came back
 * inline) or in a form it does not expect (FP32 values where `classification` asks for class strings).
 */
export function refuseUnsupportedParameters(parameters: object | undefined, tensor: string): void {
  if (!parameters) return;
  for (const [key, what] of Object.entries(UNSUPPORTED_PARAMETERS))
    if (Object.hasOwn(parameters, key))
      throw new HttpError(
        400,
        'unsupported_parameter',
        `${tensor.slice(0, 60)}: '${key}' asks for ${what}, which this server does not implement`,
      );
}

/** The most characters a request's `id` and parameters (keys and string values, all together) may hold. */
export const MAX_REQUEST_EXTRAS = 16_384;

/**
 * Refuses a request whose `id` and parameters hold more than MAX_REQUEST_EXTRAS characters: they stay in
 * memory while the request waits for the model (and the id again in its answer), so the queue's bound in
 * images must bound them too (an outside attack: single-image requests carrying 1 MB of parameters, 854 of
 * them queued, took the server 1.05 GiB; ids of 1 MB echoed to clients that never read, 600 MiB).
 */
export function refuseLargeExtras(body: InferRequest): void {
  refuseLargeParts(body.id, [
    body.parameters,
    ...body.inputs.map((t) => t.parameters),
    ...(body.outputs ?? []).map((o) => o.parameters),
  ]);
}

/** refuseLargeExtras for a request's `id` and parameter maps as given (gRPC's ModelInfer has them too). */
export function refuseLargeParts(id: string | undefined, parameterMaps: (object | undefined)[]): void {
  let chars = id?.length ?? 0;
  for (const parameters of parameterMaps)
    for (const [key, value] of Object.entries(parameters ?? {}))
      chars +=
        key.length +
        (typeof value === 'string'
          ? value.length
          : typeof value === 'object' && value !== null
            ? JSON.stringify(value).length
            : 8);
  if (chars > MAX_REQUEST_EXTRAS)
    throw new HttpError(
      400,
      'invalid_request',
      `the request's id and parameters hold ${chars} characters, over the ${MAX_REQUEST_EXTRAS} this server keeps`,
    );
}

/** The request's input tensor, checked against the model's own input: name, datatype and shape. */
export function inputTensor(model: ServedVersion, { body, binary }: V2Request, binarySource?: string) {
  refuseLargeExtras(body);
  for (const t of body.inputs) refuseUnsupportedParameters(t.parameters, `input '${t.name}'`);
  const declared = model.signature.input;
  if (body.inputs.length !== 1)
    throw new HttpError(400, 'invalid_inputs', `model '${model.name}' takes one input, ${declared.name}`);
  const tensor = body.inputs[0] as (typeof body.inputs)[number];
  if (tensor.name !== declared.name)
    throw new HttpError(
      400,
      'invalid_inputs',
      `unknown input '${tensor.name.slice(0, 60)}'; the model's input is '${declared.name}'`,
    );
  const datatype = DATATYPES[declared.dataType];
  if (tensor.datatype !== datatype)
    throw new HttpError(
      400,
      'invalid_datatype',
      `input ${declared.name} is ${datatype}, not ${tensor.datatype.slice(0, 20)}`,
    );
  const want = v2Shape(declared.shape);
  const [count = 0, ...rest] = tensor.shape;
  const fixedBatch = (want[0] ?? -1) > 0;
  const ok =
    tensor.shape.length === want.length &&
    rest.every((d, i) => d === want[i + 1]) &&
    count >= 1 &&
    (!fixedBatch || count === want[0]);
  if (!ok)
    throw new HttpError(
      400,
      'invalid_shape',
      `input ${declared.name} has shape [${want.join(',')}] (-1: any ≥ 1); got [${tensor.shape.slice(0, 8).join(',')}]`,
    );
  assertBatchSize(model, count);
  const per = sizeOf(rest);
  const bytes = binary[0];
  const data = bytes
    ? decodeFp32(bytes, count * per, declared.name, binarySource)
    : flattenTensorData(tensor.data as unknown[], tensor.shape.length, count * per);
  return { count, data };
}

/** The outputs a request asked for, in the model's order, each with whether it goes back as binary. */
export function requestedOutputs(model: ServedVersion, body: InferRequest): { name: string; binary: boolean }[] {
  const names = model.signature.outputs.map((o) => o.name);
  // No outputs named (absent, or an empty list, as Triton reads it): every output.
  const asked = body.outputs?.length ? body.outputs : names.map((name) => ({ name, parameters: undefined }));
  for (const a of asked) refuseUnsupportedParameters(a.parameters, `output '${a.name}'`);
  const twice = asked.find((o, i) => asked.findIndex((p) => p.name === o.name) !== i);
  if (twice !== undefined)
    throw new HttpError(400, 'invalid_outputs', `output '${twice.name.slice(0, 60)}' is requested twice`);
  const unknown = asked.find((o) => !names.includes(o.name));
  if (unknown !== undefined)
    throw new HttpError(
      400,
      'invalid_outputs',
      `unknown output '${unknown.name.slice(0, 60)}'; the model has ${names.join(', ')}`,
    );
  return model.signature.outputs.flatMap((o) => {
    const request = asked.find((a) => a.name === o.name);
    return request ? [{ name: o.name, binary: wantsBinary(body.parameters, request.parameters) }] : [];
  });
}

/** An output's shape for `count` images: its declared one, or [count, values per image] when that is dynamic. */
export function outputShape(output: ValueDescription, values: Float32Array, count: number): number[] {
  const perImage = v2Shape(output.shape).slice(1);
  const rowSize = values.length / count;
  // The declared dims when they are static and hold the row (the load check holds them to it: checkRows),
  // else one flat row per image: never a shape that disagrees with the data sent.
  const fits = perImage.every((d) => d > 0) && perImage.reduce((product, d) => product * d, 1) === rowSize;
  return fits ? [count, ...perImage] : [count, rowSize];
}

/**
 * The most bytes a float32 takes in a JSON answer (`-0.0000033180424452439183,`: JavaScript writes 10⁻⁶ to
 * 10⁻⁵ without an exponent, 17 digits after five zeros): what an answer is expected to need (20 undercounted
 * real answers by up to 20%).
 */
const JSON_BYTES_PER_VALUE = 26;

/** The size an answer of `count` images is expected to have: each output's values, as JSON or as binary. */
export function expectedAnswerBytes(model: ServedVersion, wanted: { name: string; binary: boolean }[], count: number) {
  return wanted.reduce(
    (sum, { name, binary }) => sum + (model.rowSizes[name] ?? 0) * count * (binary ? 4 : JSON_BYTES_PER_VALUE),
    0,
  );
}

/** The answer: JSON, or (when any output is binary) the JSON header followed by those outputs' bytes. */
export async function inferResponse(
  model: ServedVersion,
  body: InferRequest,
  wanted: { name: string; binary: boolean }[],
  outputs: Record<string, Float32Array>,
  count: number,
  client: { signal?: AbortSignal; client?: string } = {},
): Promise<Response> {
  const top = {
    model_name: model.name,
    model_version: String(model.version),
    ...(body.id !== undefined ? { id: body.id } : {}),
  };
  const tensors = wanted.map(({ name, binary }) => {
    const o = model.signature.outputs.find((s) => s.name === name) as ValueDescription;
    const values = outputs[name] as Float32Array;
    const meta = { name, datatype: DATATYPES[o.dataType] ?? o.dataType, shape: outputShape(o, values, count) };
    return { meta, values, binary };
  });
  // The JSON written a slice per event-loop turn (json-answer.ts): a large answer must not hold every request.
  const encoded = tensors.map((t) => (t.binary ? encodeFp32(t.values) : undefined));
  const chunks = encoded.filter((bytes) => bytes !== undefined);
  const header = await jsonAnswerBytes(
    top,
    tensors.map(({ meta, values }, i) => {
      const bytes = encoded[i];
      return bytes ? { meta: { ...meta, parameters: { binary_data_size: bytes.length } } } : { meta, data: values };
    }),
    client,
  );
  if (chunks.length === 0)
    return new Response(header as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/json' } });
  const { body: bytes, headerLength } = binaryResponseBody(header, chunks);
  return new Response(bytes, {
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) },
  });
}
