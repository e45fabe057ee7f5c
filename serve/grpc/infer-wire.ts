/**
 * A ModelInferRequest's cost read from its wire bytes, before protobufjs decodes it into objects. grpc-js
 * decodes a whole message (up to the body limit) on the event loop before any handler runs, and the schema's
 * limits come after: an outside attack sent 1 MB messages of 500,000 empty `inputs` (2 bytes each), each
 * decoding for ~0.5 s into ~100 MB of objects; 32 connections × 16 streams of them ran the heap out and
 * crashed the server. The walk below counts what decoding would build (repeated entries, map entries,
 * values) and stops at the first count over the limits the request would fail anyway.
 */
import { INFER_LIMITS } from '../schemas.ts';
import { MAX_REQUEST_EXTRAS } from '../v2-infer.ts';

/** What one request may hold (the schema's, plus the tensor values a body limit's worth of floats gives). */
export const INFER_WIRE_LIMITS = {
  tensors: INFER_LIMITS.tensors,
  rank: INFER_LIMITS.rank,
  parameters: INFER_LIMITS.parameters,
  /** Values in `contents`, all tensors and types together, but packed floats: 1 MiB of float32. */
  values: 262_144,
  /**
   * Values in packed `fp32_contents`, the one form that costs a copy, not a step, per value: a message
   * limit's worth where it is raised (1,024 images as raw_input_contents were answered, as fp32_contents
   * refused past 334, an outside attack; the larger cap on every form let 16 M unpacked ints hold the loop 0.9 s).
   */
  packedFloats: 262_144,
  /** The longest `id` read from the wire for a refusal's answer (longer ones are not echoed). */
  idBytes: MAX_REQUEST_EXTRAS,
  /** `bytes_contents` entries (each a Buffer; BYTES tensors are not served). */
  byteStrings: 64,
};

class TooCostly extends Error {}

/** Packed fp32 fields shorter than this count against the general value cap (each costs a step). */
const MIN_PACKED_RUN = 64;

/** Throws TooCostly when `count` is past `limit`. */
function over(count: number, limit: number, what: string): void {
  if (count > limit) throw new TooCostly(`the request has more than ${limit} ${what}`);
}

/** What a message that fails the walk (not by a count) is answered with, on the other methods. */
export const NOT_A_MESSAGE = 'the request is not a valid message of its type';

/** Runs a walk: undefined when it passes, else the count it went past, or `invalid` for malformed bytes. */
function costOf(invalid: string, walkIt: () => void): string | undefined {
  try {
    walkIt();
    return undefined;
  } catch (error) {
    return error instanceof TooCostly ? error.message : invalid;
  }
}

/**
 * Why `bytes` would cost more to decode than the server takes, or undefined when it is within the limits.
 * `seen.id` gets the request's id as the walk passes it, so a refusal that never decodes the message still
 * names it (ModelStreamInfer) — read in this walk, which stops where the limits say: a second walk for it
 * ran to the end of messages of a million empty ids and held the loop 6 s (an outside attack).
 */
export function inferRequestCost(
  bytes: Uint8Array,
  limits = INFER_WIRE_LIMITS,
  seen: { id?: string } = {},
): string | undefined {
  const counts = { values: 0, packedFloats: 0, byteStrings: 0, unknown: 0 };
  return costOf('the request is not a valid ModelInferRequest', () => {
    let inputs = 0;
    let outputs = 0;
    let raw = 0;
    let parameters = 0;
    const once = singular('request', [1, 2, 3], [4, 5, 6, 7]);
    walk(bytes, 0, bytes.length, (field, start, end, wireType) => {
      once(field);
      if (field <= 7) lengthDelimited(wireType); // every field ModelInferRequest names is a string, bytes or message
      if (field <= 3) aString(start, end); // model_name, model_version, id
      if (field === 3 && end - start <= limits.idBytes)
        seen.id = Buffer.from(bytes.subarray(start, end)).toString('utf8');
      if (field === 4) {
        over(++parameters, limits.parameters, 'parameters');
        parameterEntry(bytes, start, end);
      }
      if (field === 5) {
        over(++inputs, limits.tensors, 'inputs');
        inputTensor(bytes, start, end, limits, counts);
      }
      if (field === 6) {
        over(++outputs, limits.tensors, 'outputs');
        let outputParameters = 0;
        const onceInOutput = singular('output', [1], [2]);
        walk(bytes, start, end, (f, from, to, wire) => {
          onceInOutput(f);
          if (f <= 2) lengthDelimited(wire);
          if (f === 1) aString(from, to);
          if (f === 2) {
            over(++outputParameters, limits.parameters, 'parameters on an output');
            parameterEntry(bytes, from, to);
          }
        });
      }
      if (field === 7) over(++raw, limits.tensors, 'raw_input_contents');
    });
  });
}

function inputTensor(
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: typeof INFER_WIRE_LIMITS,
  counts: { values: number; packedFloats: number; byteStrings: number; unknown: number },
): void {
  let shape = 0;
  let parameters = 0;
  const once = singular('input', [1, 2, 5], [3, 4]);
  walk(bytes, start, end, (field, from, to, wireType) => {
    once(field);
    if (field === 3) {
      if (wireType !== 0) lengthDelimited(wireType); // shape: int64s, packed or one varint each
      shape += wireType === 2 ? varints(bytes, from, to) : 1;
      over(shape, limits.rank, 'dimensions in an input shape');
    } else if (field <= 5) lengthDelimited(wireType);
    if (field <= 2) aString(from, to); // name, datatype
    if (field === 4) {
      over(++parameters, limits.parameters, 'parameters on an input');
      parameterEntry(bytes, from, to);
    }
    if (field === 5)
      walk(bytes, from, to, (type, a, b, wire) => {
        if (type < 1 || type > 8) return over(++counts.unknown, UNKNOWN_FIELDS, 'unknown fields in contents');
        if (type === 8) {
          lengthDelimited(wire);
          return over(++counts.byteStrings, limits.byteStrings, 'bytes_contents');
        }
        // Packed: floats 4 bytes, doubles 8, the integer types varints; unpacked: one value per field.
        const unpacked = type === 6 ? 5 : type === 7 ? 1 : 0;
        if (wire !== 2 && wire !== unpacked) throw new Error(`wire type ${wire} for contents field ${type}`);
        const packed = wire === 2;
        const values = !packed ? 1 : type === 6 ? (b - a) / 4 : type === 7 ? (b - a) / 8 : varints(bytes, a, b);
        if (!Number.isInteger(values)) throw new Error('a packed float field of a partial value');
        // A packed field of a few floats costs a step, not a copy: counted as the other values are (11 M fields
        // of one float each passed the raised cap and held the loop 0.45–0.85 s, an outside attack).
        if (type === 6 && packed && values >= MIN_PACKED_RUN) {
          counts.packedFloats += values;
          return over(counts.packedFloats, limits.packedFloats, 'fp32 tensor values');
        }
        // An empty packed field builds nothing but still costs a step: 520,000 of them in 1 MiB held the
        // event loop ~150 ms a message. Each field counts as at least one value.
        counts.values += Math.max(values, 1);
        over(counts.values, limits.values, 'tensor values');
      });
  });
}

/**
 * One entry of a parameters map (key 1, value 2) and its InferParameter, a oneof: one field, once, of its
 * own wire type. Protobuf would let the value repeat its field (the last wins): 500,000 `bool_param`s in
 * one entry passed every count and decoded for ~110 ms a message (an outside attack).
 */
const PARAMETER_WIRE_TYPES = [-1, 0, 0, 2, 1, 0]; // bool, int64, string, double, uint64
function parameterEntry(bytes: Uint8Array, start: number, end: number): void {
  const once = singular('parameter', [1, 2], []);
  walk(bytes, start, end, (field, from, to, wireType) => {
    once(field);
    if (field > 2) return;
    lengthDelimited(wireType);
    if (field === 1) return aString(from, to);
    let set = 0;
    const onceInValue = singular('parameter value', [1, 2, 3, 4, 5], []);
    walk(bytes, from, to, (f, a, b, wire) => {
      onceInValue(f);
      if (f > 5) return;
      if (wire !== PARAMETER_WIRE_TYPES[f]) throw new Error(`wire type ${wire} for parameter field ${f}`);
      if (f === 3) aString(a, b);
      over(++set, 1, 'values in one parameter (it is one of bool, int64, string, double, uint64)');
    });
  });
}

/** The fields of a small request: `wireTypes[i]` is field i+1's (2: a string, bytes or message; 0: a bool). */
export interface SmallRequestFields {
  wireTypes: readonly number[];
  /** Fields that repeat (a map's entries), each with the most copies taken; the others come at most once. */
  repeated?: Readonly<Record<number, number>>;
}

/**
 * The other methods' requests (ServerLive … RepositoryModelUnload): the fields their type has, of the wire
 * type it declares, each once or as often as it may repeat, and few unknown ones — a 1 MiB message of
 * 500,000 empty names decoded for ~28 ms.
 */
export function smallRequestCost(bytes: Uint8Array, spec: SmallRequestFields): string | undefined {
  const { wireTypes, repeated = {} } = spec;
  const repeating = Object.keys(repeated).map(Number);
  const fields = wireTypes.map((_, i) => i + 1).filter((f) => !repeating.includes(f));
  const copies = new Map<number, number>();
  return costOf(NOT_A_MESSAGE, () => {
    const once = singular('request', fields, repeating);
    walk(bytes, 0, bytes.length, (field, _from, _to, wireType) => {
      once(field);
      const most = repeated[field];
      if (most !== undefined) {
        copies.set(field, (copies.get(field) ?? 0) + 1);
        over(copies.get(field) ?? 0, most, `entries of field ${field}`);
      }
      const declared = wireTypes[field - 1];
      if (declared !== undefined && wireType !== declared)
        throw new Error(`wire type ${wireType} where field ${field}'s belongs`);
    });
  });
}

/** A field the .proto declares as a string, bytes or a message must come length-delimited (wire type 2). */
function lengthDelimited(wireType: number): void {
  if (wireType !== 2) throw new Error(`wire type ${wireType} where a length-delimited field belongs`);
}

/**
 * The longest string field read: the server takes 16,384 characters at most (ids, parameters; names are
 * shorter), 4 bytes each at most in UTF-8. 64 MiB of '€' in one parameter decoded for ~0.4 s (an outside attack).
 */
const MAX_STRING_BYTES = 4 * MAX_REQUEST_EXTRAS;
const aString = (from: number, to: number) => over(to - from, MAX_STRING_BYTES, 'bytes in a string field');

/** Fields a message may carry that the .proto does not name (protobuf skips them; so does the walk, slowly). */
const UNKNOWN_FIELDS = 64;

/**
 * A per-message check that each singular field comes at most once (protobuf would merge repeats — 500,000
 * empty `contents` in one input passed every count and cost the walk 160 ms) and unknown fields are few.
 */
function singular(message: string, once: number[], repeated: number[]): (field: number) => void {
  const seen = new Map<number, number>();
  let unknown = 0;
  return (field) => {
    if (once.includes(field)) {
      const times = (seen.get(field) ?? 0) + 1;
      seen.set(field, times);
      over(times, 1, `copies of field ${field} in one ${message}`);
    } else if (!repeated.includes(field)) over(++unknown, UNKNOWN_FIELDS, `unknown fields in one ${message}`);
  };
}

/** Varints in [start, end): bytes whose high bit is clear end one each. */
function varints(bytes: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if (((bytes[i] as number) & 0x80) === 0) count++;
  return count;
}

/**
 * Each field of the message in [start, end): its number, its payload's range (a varint's bytes, a fixed
 * field's 4 or 8, a length-delimited field's contents after its length) and its wire type. Throws on
 * malformed wire data.
 */
export function walk(
  bytes: Uint8Array,
  start: number,
  end: number,
  visit: (field: number, from: number, to: number, wireType: number) => void,
): void {
  let i = start;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let k = 0; k < 10; k++) {
      if (i >= end) throw new Error('truncated varint');
      const b = bytes[i++] as number;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new Error('varint too long');
  };
  while (i < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) throw new Error('field number 0');
    const from = i;
    if (wireType === 0) {
      varint();
      visit(field, from, i, wireType);
    } else if (wireType === 1 || wireType === 5) {
      i += wireType === 1 ? 8 : 4;
      if (i > end) throw new Error('truncated fixed field');
      visit(field, from, i, wireType);
    } else if (wireType === 2) {
      const length = varint();
      if (length > end - i) throw new Error('truncated field');
      const payload = i;
      i += length;
      visit(field, payload, i, wireType);
    } else {
      throw new Error(`wire type ${wireType}`);
    }
  }
}
