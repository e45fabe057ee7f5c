/**
 * onnx/one-reading.ts: a model file the server loads must read the same in protobuf's C++ parser (ORT's) and
 * in protobufjs (ours). Golden behaviour from the protobuf spec: a singular message field written twice is
 * merged, a scalar replaced, an unknown closed-enum value ignored — checked here on Python's protobuf (the C++
 * semantics) through the onnx package where it is installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { assertOneReading } from '../onnx/one-reading.ts';
import { externalDataModel, externalDataTwice } from '../testkit/hostile-models.ts';

const field = (id: number, bytes: Uint8Array) =>
  protobuf.Writer.create()
    .uint32((id << 3) | 2)
    .bytes(bytes)
    .finish();

describe('one reading of a model file', () => {
  it('passes a model as encoders write it, external data included', () => {
    expect(() => assertOneReading(externalDataModel('w.bin').model)).not.toThrow();
  });

  it('refuses a data_location written twice (1 then 5: EXTERNAL to ORT, 5 to protobufjs)', () => {
    const bytes = externalDataTwice('../../secret.txt');
    expect(decodeModel(bytes).graph?.initializer?.[0]?.data_location).toBe(5); // what our reading saw
    expect(() => assertOneReading(bytes)).toThrow(/data_location is written more than once/);
  });

  it('refuses a second graph (merged by ORT, replacing the first in protobufjs) and a data_location of 5', () => {
    const { model } = externalDataModel('w.bin');
    const twoGraphs = Uint8Array.from([...model, ...field(7, new Uint8Array(0))]);
    expect(() => assertOneReading(twoGraphs)).toThrow(/ModelProto\.graph is written more than once/);
    const proto = decodeModel(model);
    const tensor = proto.graph?.initializer?.[0];
    if (!tensor) throw new Error('no initializer');
    tensor.data_location = 5;
    expect(() => assertOneReading(encodeModel(proto))).toThrow(/holds 5, neither DEFAULT nor EXTERNAL/);
  });

  it.skipIf(!existsSync('/usr/bin/python3'))(
    "matches protobuf's C++ semantics: the doubled field reads EXTERNAL there",
    () => {
      const bytes = externalDataTwice('../../secret.txt');
      const script = [
        'import sys, onnx',
        'm = onnx.load_from_string(sys.stdin.buffer.read())',
        'print(m.graph.initializer[0].data_location)',
      ].join('\n');
      let out: string;
      try {
        out = execFileSync('/usr/bin/python3', ['-c', script], { input: bytes }).toString().trim();
      } catch {
        return; // no onnx package: the spec's rule stands without it
      }
      expect(out).toBe('1');
    },
  );
});
