import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeInferRequest, fp32ContentsBytes } from '../serve/grpc/infer-request.ts';
import { INFER_WIRE_LIMITS, inferRequestCost, smallRequestCost } from '../serve/grpc/infer-wire.ts';
import { grpcProtoRoot } from '../serve/grpc/proto.ts';

// The .proto's own field names (protobufjs would camel-case them and drop ours).
const root = grpcProtoRoot();
const Request = root.lookupType('inference.ModelInferRequest');
const encode = (message: Record<string, unknown>) => Request.encode(Request.fromObject(message)).finish();
const tensor = (extra: Record<string, unknown> = {}) => ({
  name: 'input',
  datatype: 'FP32',
  shape: [2, 1, 28, 28],
  ...extra,
});

/** Field `field` as wire type 2 around `bytes` (its tag and varint length first), as protobufjs writes it. */
const lengthDelimitedField = (field: number, bytes: Uint8Array) =>
  Buffer.from(
    protobuf.Writer.create()
      .uint32((field << 3) | 2)
      .bytes(bytes)
      .finish(),
  );

describe('a ModelInferRequest read from its wire bytes', () => {
  it('takes what the server serves: 16 inputs, rank 8, parameters, a body limit of float32 contents', () => {
    expect(
      inferRequestCost(encode({ model_name: 'cnn', inputs: [tensor()], raw_input_contents: [Buffer.alloc(6272)] })),
    ).toBeUndefined();
    const full = {
      model_name: 'cnn',
      parameters: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`p${i}`, { int64_param: i }])),
      inputs: Array.from({ length: 16 }, () => tensor({ shape: [1, 1, 1, 1, 1, 1, 1, 784] })),
      outputs: Array.from({ length: 16 }, (_, i) => ({ name: `o${i}` })),
    };
    expect(inferRequestCost(encode(full))).toBeUndefined();
    const values = INFER_WIRE_LIMITS.values;
    expect(
      inferRequestCost(encode({ inputs: [tensor({ contents: { fp32_contents: new Array(values).fill(0.5) } })] })),
    ).toBeUndefined();
  });

  it('reads the id as it walks, stopping where the walk does (a second walk for it ran through a million empty ids)', () => {
    const seen: { id?: string } = {};
    const over = { model_name: 'cnn', id: 'mine', inputs: Array.from({ length: 17 }, () => ({})) };
    expect(inferRequestCost(encode(over), INFER_WIRE_LIMITS, seen)).toMatch(/more than 16 inputs/);
    expect(seen.id).toBe('mine');
    // The id given twice (protobuf's last-wins): refused at the second copy, the first kept, the rest unread.
    const twice = Buffer.concat([
      encode({ model_name: 'cnn', id: 'first' }),
      ...Array.from({ length: 1000 }, () => encode({ id: 'x' })),
    ]);
    const again: { id?: string } = {};
    expect(inferRequestCost(twice, INFER_WIRE_LIMITS, again)).toMatch(/more than 1 copies/);
    expect(again.id).toBe('first');
    // More packed floats with a raised limit, other values not.
    const raised = { ...INFER_WIRE_LIMITS, packedFloats: 4 * INFER_WIRE_LIMITS.values };
    const floats = encode({
      inputs: [tensor({ contents: { fp32_contents: new Array(2 * INFER_WIRE_LIMITS.values).fill(0.5) } })],
    });
    expect(inferRequestCost(floats, raised)).toBeUndefined();
    const ints = encode({
      inputs: [tensor({ contents: { int_contents: new Array(INFER_WIRE_LIMITS.values + 1).fill(1) } })],
    });
    expect(inferRequestCost(ints, raised)).toMatch(/more than 262144 tensor values/);
    // Packed fields of one float each cost a step apiece: held to the general cap, raised limit or not.
    const oneFloat = Buffer.from([0x32, 4, 0, 0, 0, 0x3f]); // fp32_contents (6), packed, one float
    const manyFields = (n: number) => {
      const contents = Buffer.concat(Array.from({ length: n }, () => oneFloat));
      const input = Buffer.concat([encode({}), lengthDelimitedField(5, contents)]); // InferInputTensor.contents
      return Buffer.concat([encode({ model_name: 'cnn' }), lengthDelimitedField(5, input)]);
    };
    expect(inferRequestCost(manyFields(1000), raised)).toBeUndefined();
    expect(inferRequestCost(manyFields(INFER_WIRE_LIMITS.values + 1), raised)).toMatch(
      /more than 262144 tensor values/,
    );
  });

  it('refuses a string field past 64 KiB before it is decoded (64 MiB of multibyte text decoded for 0.4 s)', () => {
    const long = '€'.repeat(22_000); // 66,000 bytes
    expect(inferRequestCost(encode({ model_name: 'cnn', parameters: { note: { string_param: long } } }))).toMatch(
      /more than 65536 bytes in a string field/,
    );
    expect(inferRequestCost(encode({ model_name: 'cnn', outputs: [{ name: long }] }))).toMatch(/string field/);
    expect(inferRequestCost(encode({ model_name: 'cnn', inputs: [tensor({ name: long })] }))).toMatch(/string field/);
    expect(inferRequestCost(encode({ model_name: long }))).toMatch(/string field/);
    expect(
      inferRequestCost(encode({ model_name: 'cnn', parameters: { note: { string_param: '€'.repeat(16_384) } } })),
    ).toBeUndefined();
  });

  it('refuses what would decode into more: entries, dimensions, parameters, values of any type', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['17 inputs', { inputs: Array.from({ length: 17 }, () => ({})) }, /more than 16 inputs/],
      ['17 outputs', { outputs: Array.from({ length: 17 }, () => ({})) }, /more than 16 outputs/],
      [
        '17 raw contents',
        { raw_input_contents: Array.from({ length: 17 }, () => Buffer.alloc(1)) },
        /raw_input_contents/,
      ],
      ['rank 9', { inputs: [tensor({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] })] }, /dimensions/],
      [
        '33 parameters',
        { parameters: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, {}])) },
        /parameters/,
      ],
      [
        '33 on an input',
        { inputs: [tensor({ parameters: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, {}])) })] },
        /parameters on an input/,
      ],
      [
        '33 on an output',
        {
          outputs: [{ name: 'o', parameters: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, {}])) }],
        },
        /parameters on an output/,
      ],
      [
        'one float too many',
        { inputs: [tensor({ contents: { fp32_contents: new Array(INFER_WIRE_LIMITS.values + 1).fill(1) } })] },
        /tensor values/,
      ],
      [
        'bools',
        { inputs: [tensor({ contents: { bool_contents: new Array(INFER_WIRE_LIMITS.values + 1).fill(true) } })] },
        /tensor values/,
      ],
      [
        'doubles over two inputs',
        {
          inputs: [
            tensor({ contents: { fp64_contents: new Array(150_000).fill(1) } }),
            tensor({ contents: { int_contents: new Array(150_000).fill(1) } }),
          ],
        },
        /tensor values/,
      ],
      [
        '65 byte strings',
        { inputs: [tensor({ contents: { bytes_contents: Array.from({ length: 65 }, () => Buffer.alloc(1)) } })] },
        /bytes_contents/,
      ],
    ];
    for (const [what, message, reason] of cases) expect(inferRequestCost(encode(message)), what).toMatch(reason);
  });

  it('counts unpacked repeated values as protobuf allows them too', () => {
    // fp32 field 6 unpacked: tag (6 << 3 | 5) = 0x35, then 4 bytes, per value; inside contents (field 5 of a tensor).
    const values = INFER_WIRE_LIMITS.values + 1;
    const contents = Buffer.concat(Array.from({ length: values }, () => Buffer.from([0x35, 0, 0, 0, 0])));
    const withLength = (field: number, body: Buffer) =>
      Buffer.concat([Buffer.from([(field << 3) | 2]), varint(body.length), body]);
    const input = withLength(5, contents); // InferInputTensor.contents
    expect(inferRequestCost(withLength(5, input))).toMatch(/tensor values/);
  });

  it('counts each contents field as at least one value: 520,000 empty packed chunks are refused unread', () => {
    // fp32_contents (field 6) packed with length 0: bytes 0x32 0x00, each building nothing but costing a step.
    const contents = Buffer.alloc(1_040_000, Buffer.from([0x32, 0x00]));
    const withLength = (field: number, body: Buffer) =>
      Buffer.concat([Buffer.from([(field << 3) | 2]), varint(body.length), body]);
    expect(inferRequestCost(withLength(5, withLength(5, contents)))).toMatch(/more than 262144 tensor values/);
    const bools = Buffer.alloc(1_040_000, Buffer.from([0x0a, 0x00]));
    expect(inferRequestCost(withLength(5, withLength(5, bools)))).toMatch(/more than 262144 tensor values/);
  });

  it('reads inside parameters: each a oneof of one field, once (500,000 bool_params in one entry are refused)', () => {
    const kinds = {
      b: { bool_param: true },
      i: { int64_param: 7 },
      s: { string_param: 'x' },
      d: { double_param: 0.5 },
      u: { uint64_param: 9 },
    };
    const ok = {
      model_name: 'cnn',
      parameters: kinds,
      inputs: [tensor({ parameters: kinds })],
      outputs: [{ name: 'o', parameters: kinds }],
    };
    expect(inferRequestCost(encode(ok))).toBeUndefined();
    const withLength = (field: number, body: Buffer) =>
      Buffer.concat([Buffer.from([(field << 3) | 2]), varint(body.length), body]);
    // InferParameter repeating bool_param (field 1, varint): 08 01, 500,000 times.
    const value = Buffer.alloc(1_000_000, Buffer.from([0x08, 0x01]));
    const entry = Buffer.concat([withLength(1, Buffer.from('k')), withLength(2, value)]);
    expect(inferRequestCost(withLength(4, entry))).toMatch(/copies of field 1 in one parameter value/);
    const twoKinds = Buffer.concat([
      withLength(1, Buffer.from('k')),
      withLength(2, Buffer.from([0x08, 0x01, 0x10, 0x02])),
    ]);
    expect(inferRequestCost(withLength(4, twoKinds))).toMatch(/values in one parameter/);
    const input = Buffer.concat([withLength(1, Buffer.from('input')), withLength(4, entry)]);
    expect(inferRequestCost(withLength(5, input))).toMatch(/copies of field 1 in one parameter value/);
    const stringAsVarint = Buffer.concat([withLength(1, Buffer.from('k')), withLength(2, Buffer.from([0x18, 0x01]))]);
    expect(inferRequestCost(withLength(4, stringAsVarint))).toBe('the request is not a valid ModelInferRequest');
  });

  it("the other methods' requests: a name and a version once each, few unknown fields", () => {
    const Metadata = root.lookupType('inference.ModelMetadataRequest');
    expect(
      smallRequestCost(Metadata.encode({ name: 'cnn', version: '2' }).finish(), { wireTypes: [2, 2] }),
    ).toBeUndefined();
    expect(smallRequestCost(Buffer.alloc(1_000_000, Buffer.from([0x0a, 0x00])), { wireTypes: [2, 2] })).toMatch(
      /copies of field 1/,
    );
    expect(smallRequestCost(Buffer.alloc(3 * 65, Buffer.from([0x98, 0x06, 0x00])), { wireTypes: [] })).toMatch(
      /unknown fields/,
    );
    expect(smallRequestCost(Buffer.from([0x08, 0x01]), { wireTypes: [2, 2] })).toBe(
      'the request is not a valid message of its type',
    );
    // RepositoryIndexRequest: repository_name (a string), ready (a bool, a varint)
    expect(smallRequestCost(Buffer.from([0x0a, 0x00, 0x10, 0x01]), { wireTypes: [2, 0] })).toBeUndefined();
    expect(smallRequestCost(Buffer.from([0x12, 0x00]), { wireTypes: [2, 0] })).toBe(
      'the request is not a valid message of its type',
    );
    expect(smallRequestCost(Buffer.alloc(0), { wireTypes: [] })).toBeUndefined();
    // RepositoryModelLoadRequest: a map of parameters (field 3) repeats, up to its bound.
    const load = { wireTypes: [2, 2, 2], repeated: { 3: 16 } };
    expect(smallRequestCost(Buffer.alloc(2 * 16, Buffer.from([0x1a, 0x00])), load)).toBeUndefined();
    expect(smallRequestCost(Buffer.alloc(2 * 17, Buffer.from([0x1a, 0x00])), load)).toMatch(
      /more than 16 entries of field 3/,
    );
    expect(smallRequestCost(Buffer.from([0x12, 0x00, 0x12, 0x00]), load)).toMatch(/copies of field 2/);
  });

  it('a singular field repeated (protobuf would merge the copies) and unknown fields past 64 are refused', () => {
    const input = Buffer.concat([Buffer.from([0x0a, 1, 0x78]), Buffer.alloc(1_000_000, Buffer.from([0x2a, 0x00]))]);
    const request = Buffer.concat([Buffer.from([0x2a]), varint(input.length), input]);
    expect(inferRequestCost(request)).toMatch(/copies of field 5 in one input/);
    expect(inferRequestCost(Buffer.concat([Buffer.from([0x0a, 1, 0x61]), Buffer.from([0x0a, 1, 0x62])]))).toMatch(
      /copies of field 1 in one request/,
    );
    // Field 99 as a varint: tag (99 << 3) = 792 → bytes 0x98 0x06, then the value 0.
    const unknown = (n: number) => Buffer.alloc(3 * n, Buffer.from([0x98, 0x06, 0x00]));
    expect(inferRequestCost(unknown(64))).toBeUndefined();
    expect(inferRequestCost(unknown(65))).toMatch(/unknown fields in one request/);
  });

  it("an attack's 1 MB of empty inputs is refused at the 17th, and malformed bytes are refused as such", () => {
    const bomb = Buffer.concat([
      Buffer.from([0x0a, 3, 0x63, 0x6e, 0x6e]),
      Buffer.alloc(1_000_000, Buffer.from([0x2a, 0x00])),
    ]);
    expect(inferRequestCost(bomb)).toMatch(/more than 16 inputs/);
    for (const bad of [
      Buffer.from([0x2a, 0x05, 0x00]),
      Buffer.from([0x0b]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ])
      expect(inferRequestCost(bad)).toBe('the request is not a valid ModelInferRequest');
  });
});

describe('a ModelInferRequest decoded with its contents left as bytes', () => {
  const fp32 = (bytes: Uint8Array) => Array.from(new Float32Array(new Uint8Array(bytes).buffer));

  it('gives the header protobufjs gives, and packed fp32_contents as a view of the message', () => {
    const values = [0.5, -1.25, 3e-8, 1e30];
    const message = {
      model_name: 'cnn',
      model_version: '2',
      id: 'r1',
      inputs: [tensor({ contents: { fp32_contents: values } })],
      outputs: [{ name: 'logits' }],
    };
    const bytes = Buffer.from(encode(message));
    const decoded = decodeInferRequest(bytes);
    expect({ ...decoded, inputs: decoded.inputs.map(({ contents: _, ...rest }) => rest) }).toMatchObject({
      model_name: 'cnn',
      model_version: '2',
      id: 'r1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28] }],
      outputs: [{ name: 'logits' }],
      raw_input_contents: [],
    });
    const { bytes: floats, others } = fp32ContentsBytes((decoded.inputs[0] as { contents: Uint8Array }).contents);
    expect(fp32(floats)).toEqual(values.map(Math.fround));
    expect(others).toEqual([]);
    expect(floats.buffer).toBe(bytes.buffer); // no copy
  });

  it('reads unpacked and repeated fp32 fields in wire order, as protobufjs does, and names other types', () => {
    // Contents: a packed chunk [1, 2], one unpacked 3 (tag 0x35), a packed [4], then int_contents [7].
    const f = (...v: number[]) => Buffer.from(new Float32Array(v).buffer);
    const contents = Buffer.concat([
      Buffer.from([0x32, 8]),
      f(1, 2),
      Buffer.from([0x35]),
      f(3),
      Buffer.from([0x32, 4]),
      f(4),
      Buffer.from([0x12, 1, 7]),
    ]);
    const Contents = root.lookupType('inference.InferTensorContents');
    const reference = Contents.toObject(Contents.decode(contents)) as { fp32_contents: number[] };
    const { bytes, others } = fp32ContentsBytes(contents);
    expect(fp32(bytes)).toEqual(reference.fp32_contents);
    expect(fp32(bytes)).toEqual([1, 2, 3, 4]);
    expect(others).toEqual(['int_contents']);
  });

  it('refuses known fields in the wrong wire type and packed floats cut mid-value', () => {
    const cases: [string, Buffer][] = [
      ['model_name as a varint', Buffer.from([0x08, 0x01])],
      ['an input as a fixed32', Buffer.from([0x2d, 0, 0, 0, 0])],
      ['contents as a varint', Buffer.from([0x2a, 2, 0x28, 0x01])],
      ['fp32_contents as a varint', Buffer.from([0x2a, 4, 0x2a, 2, 0x30, 0x01])],
      ['5 bytes of packed floats', Buffer.from([0x2a, 9, 0x2a, 7, 0x32, 5, 0, 0, 0, 0, 0])],
      ['field number 0', Buffer.from([0x02, 0x00])],
    ];
    for (const [what, bytes] of cases)
      expect(inferRequestCost(bytes), what).toBe('the request is not a valid ModelInferRequest');
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
