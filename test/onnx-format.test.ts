/** The protobufjs ONNX writer and reader: round trips, typed attributes, and ONNX's own checker as the judge. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inferenceModel } from '../core/model/inference-model.ts';
import { MODEL_NAMES, ZOO } from '../core/model/zoo/index.ts';
import { float, int, ints, str } from '../onnx/attributes.ts';
import { GraphBuilder, PRODUCER_VERSION } from '../onnx/builder.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { describeModel } from '../onnx/describe.ts';
import { floatTensor, fromTensorProto, int64Tensor } from '../onnx/tensor.ts';
import { externalDataLocations } from '../serve/runner/external-data.ts';
import { externalDataHiddenIn, HIDING_PLACES } from '../testkit/hostile-models.ts';
import { runModel } from './helpers/ort.ts';

function tinyModel() {
  const g = new GraphBuilder('tiny');
  const x = g.input('x', 'FLOAT', ['N', 4]);
  const w = g.initializer('w', floatTensor([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
  const shape = g.initializer('shape', int64Tensor([2], [-1, 2]));
  const y = g.op('Gemm', [x, w], { alpha: float(1), transB: int(0) });
  const r = g.op('Reshape', [y, shape]);
  const lrelu = g.op('LeakyRelu', [r], { alpha: float(0.5) });
  g.output(lrelu, 'FLOAT', ['N', 2], 'y');
  return g.toModel({ metadata: { labels: '0,1', note: 'héllo ✓' }, docString: 'a tiny model' });
}

describe('ONNX writer and reader', () => {
  it('round-trips a model: inputs, outputs, opset, IR, ops, metadata', () => {
    const info = describeModel(decodeModel(encodeModel(tinyModel())));
    expect(info.irVersion).toBe(8);
    expect(info.opset).toBe(17);
    expect(info.producerName).toBe('mnist-onnx-cnn');
    expect(info.inputs).toEqual([{ name: 'x', dataType: 'FLOAT', shape: ['N', 4] }]);
    expect(info.outputs).toEqual([{ name: 'y', dataType: 'FLOAT', shape: ['N', 2] }]);
    expect(info.ops).toEqual({ Gemm: 1, LeakyRelu: 1, Reshape: 1 }); // the output renamed where it is made
    expect(info.parameterCount).toBe(8); // the int64 shape is not a parameter
    expect(info.metadata).toEqual({ labels: '0,1', note: 'héllo ✓' });
  });

  it('renames an output where it is made; later nodes reading the old name read it; an input output gets an Identity', async () => {
    const g = new GraphBuilder('renames');
    const x = g.input('x', 'FLOAT', [3]);
    const doubled = g.op('Add', [x, x]);
    g.output(doubled, 'FLOAT', [3], 'twice');
    g.output(g.op('Mul', [doubled, x]), 'FLOAT', [3], 'square_twice'); // built after the rename, from the old name
    g.output(doubled, 'FLOAT', [3], 'twice_again'); // a second public name: a copy
    g.output(x, 'FLOAT', [3], 'x_out'); // a graph input cannot be renamed
    const model = g.toModel();
    expect(model.graph?.node?.map((n) => n.op_type)).toEqual(['Add', 'Mul', 'Identity', 'Identity']);
    const out = await runModel(model, { x: { dims: [3], data: Float32Array.from([1, -2, 3]) } });
    expect(Array.from(out.twice?.data as Float32Array)).toEqual([2, -4, 6]);
    expect(Array.from(out.square_twice?.data as Float32Array)).toEqual([2, 8, 18]);
    expect(Array.from(out.twice_again?.data as Float32Array)).toEqual([2, -4, 6]);
    expect(Array.from(out.x_out?.data as Float32Array)).toEqual([1, -2, 3]);
  });

  it('keeps INT and FLOAT attributes apart (ORT rejects the wrong kind)', () => {
    const node = decodeModel(encodeModel(tinyModel())).graph?.node?.find((n) => n.op_type === 'Gemm');
    const attrs = Object.fromEntries((node?.attribute ?? []).map((a) => [a.name, a]));
    expect(attrs.alpha).toMatchObject({ type: 1, f: 1 });
    expect(attrs.transB).toMatchObject({ type: 2, i: 0 });
    expect(() => int(0.5)).toThrow(/non-integer/);
    expect(() => ints([1, 2.5])).toThrow(/non-integer/);
    expect(str('x')).toEqual({ kind: 'string', value: 'x' });
  });

  it('round-trips float and int64 tensors through raw_data', () => {
    const f = fromTensorProto(decodeModel(encodeModel(tinyModel())).graph?.initializer?.[0] ?? {});
    expect(f.dims).toEqual([4, 2]);
    expect(Array.from(f.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const i = fromTensorProto(decodeModel(encodeModel(tinyModel())).graph?.initializer?.[1] ?? {});
    expect(i.dataType).toBe('INT64');
    expect(Array.from(i.data as BigInt64Array)).toEqual([-1n, 2n]);
    expect(() => floatTensor([3], [1, 2])).toThrow(/2 elements but dims \[3\] need 3/);
  });

  it('runs in onnxruntime-node with a dynamic batch', async () => {
    const out = await runModel(tinyModel(), {
      x: { dims: [3, 4], data: Float32Array.from({ length: 12 }, (_, k) => k - 6) },
    });
    const y = out.y as unknown as { dims: number[]; data: Float32Array };
    expect(y.dims).toEqual([3, 2]);
    // row 0 = [-6,-5,-4,-3]·W = [-6-15-20-21, -12-20-24-24]·… then LeakyRelu(0.5)
    expect(y.data[0]).toBeCloseTo(0.5 * (-6 * 1 + -5 * 3 + -4 * 5 + -3 * 7), 4);
  });

  it('re-encodes model files byte for byte, and keeps sparse tensors, functions and training graphs', () => {
    for (const file of ['test/fixtures/models/cnn/1/model.onnx', 'test/fixtures/torch-cnn-opset13.onnx']) {
      const bytes = readFileSync(file);
      expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(bytes), file).toBe(true);
    }
    for (const place of HIDING_PLACES) {
      const bytes = externalDataHiddenIn(place, 'w.bin');
      expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes)), place).toBe(true);
      // Every place is read back, so the server's external-data check sees the tensor there.
      expect(externalDataLocations(decodeModel(bytes)), place).toEqual(['w.bin']);
    }
  });

  it('rejects bytes that are not an ONNX model with a clear message', () => {
    expect(() => decodeModel(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/not an ONNX model/);
    expect(() => decodeModel(new Uint8Array([]))).toThrow(/not an ONNX model: it has no graph/);
  });
});

// ONNX's reference checker (Debian's python3-onnx) is an independent judge of our files.
const PYTHON = '/usr/bin/python3';
const hasOnnxPython =
  existsSync(PYTHON) &&
  (() => {
    try {
      execFileSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
if (!hasOnnxPython)
  console.warn('skipping the ONNX checker test: /usr/bin/python3 with onnx (apt-get install python3-onnx) is missing');

describe.skipIf(!hasOnnxPython)('ONNX checker (python3-onnx)', () => {
  it('accepts every zoo model with full shape inference, and reads the same ops and parameters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onnx-check-'));
    const expected: Record<string, unknown> = {};
    for (const name of MODEL_NAMES) {
      const { model } = inferenceModel(ZOO[name].build());
      writeFileSync(join(dir, `${name}.onnx`), encodeModel(model));
      const info = describeModel(model);
      expected[name] = {
        ops: info.ops,
        params: info.parameterCount,
        output: [info.outputs[0]?.name, info.outputs[0]?.shape],
      };
    }
    const script = `
import json, sys, glob, os, collections, numpy as np, onnx
from onnx import numpy_helper
out = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.onnx'))):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    o = inferred.graph.output[0]
    dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
    ops = collections.Counter(n.op_type for n in m.graph.node)
    params = sum(int(np.prod(numpy_helper.to_array(t).shape)) for t in m.graph.initializer if t.data_type == 1)
    out[os.path.basename(path)[:-5]] = {'ops': dict(ops), 'params': params, 'output': [o.name, dims]}
print(json.dumps(out))`;
    const report = JSON.parse(execFileSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' }));
    for (const name of MODEL_NAMES) {
      expect(report[name]).toEqual(expected[name]);
    }
  });
});

describe('the project version', () => {
  it("is package.json's in the ONNX files we write and in the server's answers", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(PRODUCER_VERSION).toBe(pkg.version);
  });
});
