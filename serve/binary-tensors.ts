/**
 * Triton's binary tensor data extension (HTTP): a body is a JSON inference header of
 * `Inference-Header-Content-Length` bytes followed by the raw tensors, in input order, of every input whose
 * parameters carry `binary_data_size`. Outputs come back the same way when asked (`binary_data` per output,
 * `binary_data_output` for all). FP32 is the only datatype this server serves: little-endian, row-major.
 */
import { HttpError } from './errors.ts';

/** The header that says where the JSON part of a body ends (both directions). */
export const HEADER_LENGTH = 'Inference-Header-Content-Length';

/** A request body split at the header length: the JSON text's value and the bytes after it. */
export interface BinaryBody {
  json: unknown;
  tail: Uint8Array;
}

/** The largest JSON header of a binary-extension request (its id and parameters hold at most 16,384 characters). */
export const MAX_BINARY_HEADER_BYTES = 65_536;

/** Split `bytes` at the `Inference-Header-Content-Length` value `raw`; 400 when either part is malformed. */
export function splitBinaryBody(bytes: Uint8Array, raw: string): BinaryBody {
  if (!/^[0-9]{1,10}$/.test(raw.trim()))
    throw new HttpError(400, 'invalid_header', `${HEADER_LENGTH} must be a byte count, not '${raw.slice(0, 20)}'`);
  const length = Number(raw.trim());
  // A header describes a few tensors: a large one is keys the schema drops, kept with the body while the request
  // waits (an outside attack: 800 queued single-image requests with 1 MB headers, +794 MiB).
  if (length > MAX_BINARY_HEADER_BYTES)
    throw new HttpError(
      400,
      'invalid_header',
      `${HEADER_LENGTH} is ${length}; a JSON header of at most ${MAX_BINARY_HEADER_BYTES} bytes is taken`,
    );
  if (length === 0 || length > bytes.length)
    throw new HttpError(
      400,
      'invalid_header',
      `${HEADER_LENGTH} is ${length}; the body has ${bytes.length} bytes, and the JSON header comes first`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, length));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the inference header is not UTF-8 text');
  }
  try {
    return { json: JSON.parse(text), tail: bytes.subarray(length) };
  } catch (error) {
    throw new HttpError(
      400,
      'invalid_json',
      `the inference header is not valid JSON: ${(error as Error).message.slice(0, 120)}`,
    );
  }
}

/** An input's `binary_data_size`, if it has one (a non-negative integer, else 400). */
export function binaryDataSize(parameters: Record<string, unknown> | undefined, input: string): number | undefined {
  if (!parameters || !Object.hasOwn(parameters, 'binary_data_size')) return undefined;
  const size = parameters.binary_data_size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new HttpError(400, 'invalid_parameter', `input ${input.slice(0, 60)}: binary_data_size must be a byte count`);
  return size;
}

/**
 * Each input's raw bytes from `tail` (undefined for inputs given as JSON `data`), consumed in input order;
 * the sizes must account for every byte after the header.
 */
export function binaryInputs(
  inputs: { name: string; data?: unknown; parameters?: Record<string, unknown> }[],
  tail: Uint8Array | undefined,
): (Uint8Array | undefined)[] {
  let offset = 0;
  const parts = inputs.map((input) => {
    const size = binaryDataSize(input.parameters, input.name);
    if (size === undefined) {
      if (input.data === undefined)
        throw new HttpError(400, 'invalid_inputs', `input ${input.name.slice(0, 60)} has neither data nor binary data`);
      return undefined;
    }
    if (input.data !== undefined)
      throw new HttpError(400, 'invalid_inputs', `input ${input.name.slice(0, 60)} has both data and binary_data_size`);
    if (tail === undefined)
      throw new HttpError(400, 'invalid_inputs', `binary_data_size needs the ${HEADER_LENGTH} header`);
    if (offset + size > tail.length)
      throw new HttpError(
        400,
        'invalid_inputs',
        `binary data ends at byte ${tail.length} after the header; input ${input.name.slice(0, 60)} claims ${size} from byte ${offset}`,
      );
    // A copy: the body it came in (and its header) can go while the request waits for the model.
    const part = tail.slice(offset, offset + size);
    offset += size;
    return part;
  });
  if (tail !== undefined && offset !== tail.length)
    throw new HttpError(
      400,
      'invalid_inputs',
      `${tail.length - offset} bytes after the header belong to no input's binary_data_size`,
    );
  return parts;
}

/** Little-endian FP32 bytes → float32 values: exactly `expected` of them, every one finite (else 400). */
export function decodeFp32(bytes: Uint8Array, expected: number, input: string, source = 'binary data'): Float32Array {
  if (bytes.length !== expected * 4)
    throw new HttpError(
      400,
      'invalid_shape',
      `input ${input} has ${bytes.length} bytes of ${source}; its shape needs ${expected * 4} (${expected} FP32 values)`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = view.getFloat32(i * 4, true);
    if (!Number.isFinite(v))
      throw new HttpError(400, 'invalid_value', `data[${i}] is ${v}: FP32 data must be finite float32 numbers`);
    out[i] = v;
  }
  return out;
}

/** float32 values → little-endian bytes (the host's order does not matter). */
export function encodeFp32(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return bytes;
}

/** Whether an output goes back as binary: its own `binary_data`, else the request's `binary_data_output`. */
export function wantsBinary(
  requestParameters: Record<string, unknown> | undefined,
  outputParameters: Record<string, unknown> | undefined,
): boolean {
  const own = outputParameters?.binary_data;
  if (own !== undefined) {
    if (typeof own !== 'boolean') throw new HttpError(400, 'invalid_parameter', 'binary_data must be true or false');
    return own;
  }
  const all = requestParameters?.binary_data_output;
  if (all !== undefined && typeof all !== 'boolean')
    throw new HttpError(400, 'invalid_parameter', 'binary_data_output must be true or false');
  return all === true;
}

/** A response body: the JSON header, then `chunks` in order; and the header length to send with it. */
export function binaryResponseBody(
  json: Uint8Array,
  chunks: Uint8Array[],
): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  const body = new Uint8Array(json.length + chunks.reduce((n, c) => n + c.length, 0));
  body.set(json, 0);
  let offset = json.length;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return { body, headerLength: json.length };
}
