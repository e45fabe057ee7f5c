/**
 * Triton's binary tensor data extension, with requests assembled here byte by byte from the protocol
 * document (a JSON header of Inference-Header-Content-Length bytes, then little-endian FP32 tensors) and
 * answers read the same way: the logits equal the JSON route's for the same images, outputs come back
 * binary per output (binary_data) or all at once (binary_data_output), and the JSON route's limits hold.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { hostileModel } from '../testkit/hostile-models.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { refusalOf } from './helpers/refusal.ts';

let server: RunningServer;
const MAX_BODY = 64 * 1024;
const folded = { normalization: 'folded (test)' };

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-binary-'));
  const put = (name: string, bytes?: Uint8Array) => {
    mkdirSync(join(root, name, '1'), { recursive: true });
    if (bytes) writeFileSync(join(root, name, '1', 'model.onnx'), bytes);
  };
  put('torchcnn');
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  put('two', oddModel({ extraOutputs: 1, metadata: folded }));
  put('small', oddModel({ metadata: folded }));
  writeFileSync(join(root, 'small', 'config.pbtxt'), 'max_batch_size: 4\n');
  put('infinite', hostileModel('infinite-when-triggered'));
  server = await startServer({ models: root, port: 0, maxBodyBytes: MAX_BODY });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const images = (count: number) =>
  Array.from({ length: count * 784 }, (_, i) => (((i * 37) % 255) / 255 - 0.1307) / 0.3081);

/** Little-endian FP32 bytes, written value by value. */
const fp32 = (values: number[]) => {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    bytes.writeFloatLE(v, i * 4);
  });
  return bytes;
};

/** A request as the spec lays it out: the JSON header, then the tensors. */
const binaryRequest = (model: string, header: object, tensors: Buffer[], headerLength?: string) => {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    body: Buffer.concat([json, ...tensors]),
    headers: {
      'content-type': 'application/octet-stream',
      'Inference-Header-Content-Length': headerLength ?? String(json.length),
    },
  });
};

interface Output {
  name: string;
  shape: number[];
  datatype: string;
  data?: number[];
  parameters?: { binary_data_size: number };
}

/** A response read by the spec: its JSON header, then each binary output's bytes in order. */
async function readAnswer(r: Response): Promise<{ outputs: Output[]; values: Record<string, number[]> }> {
  const body = Buffer.from(await r.arrayBuffer());
  const length = r.headers.get('inference-header-content-length');
  const headerEnd = length === null ? body.length : Number(length);
  const header = JSON.parse(body.subarray(0, headerEnd).toString('utf8')) as { outputs: Output[] };
  const values: Record<string, number[]> = {};
  let offset = headerEnd;
  for (const o of header.outputs) {
    if (o.data) {
      values[o.name] = o.data;
      continue;
    }
    const size = o.parameters?.binary_data_size as number;
    values[o.name] = Array.from({ length: size / 4 }, (_, i) => body.readFloatLE(offset + i * 4));
    offset += size;
  }
  expect(offset).toBe(body.length);
  return { outputs: header.outputs, values };
}

const jsonInfer = async (model: string, count: number, data: number[]) => {
  const r = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [count, 1, 28, 28], datatype: 'FP32', data }] }),
  });
  expect(r.status).toBe(200);
  return readAnswer(r);
};

const binaryInput = (count: number) => ({
  name: 'input',
  shape: [count, 1, 28, 28],
  datatype: 'FP32',
  parameters: { binary_data_size: count * 784 * 4 },
});

it('answers a hand-built binary request with binary logits equal to the JSON route', async () => {
  const data = images(3);
  const r = await binaryRequest(
    'torchcnn',
    { id: 'b1', inputs: [binaryInput(3)], outputs: [{ name: 'logits', parameters: { binary_data: true } }] },
    [fp32(data)],
  );
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('application/octet-stream');
  const answer = await readAnswer(r);
  expect(answer.outputs).toEqual([
    { name: 'logits', datatype: 'FP32', shape: [3, 10], parameters: { binary_data_size: 3 * 10 * 4 } },
  ]);
  expect(answer.values.logits).toEqual((await jsonInfer('torchcnn', 3, data)).values.logits);
});

it('sends every output binary with binary_data_output, and lets an output opt out', async () => {
  const data = images(2);
  const expected = (await jsonInfer('two', 2, data)).values;
  const all = await readAnswer(
    await binaryRequest('two', { inputs: [binaryInput(2)], parameters: { binary_data_output: true } }, [fp32(data)]),
  );
  expect(all.outputs.map((o) => [o.name, o.data, o.parameters?.binary_data_size])).toEqual([
    ['logits', undefined, 80],
    ['extra0', undefined, 80],
  ]);
  expect(all.values).toEqual(expected);
  const mixed = await readAnswer(
    await binaryRequest(
      'two',
      {
        inputs: [binaryInput(2)],
        parameters: { binary_data_output: true },
        outputs: [{ name: 'logits', parameters: { binary_data: false } }, { name: 'extra0' }],
      },
      [fp32(data)],
    ),
  );
  expect(mixed.outputs.map((o) => [o.name, o.data !== undefined, o.parameters])).toEqual([
    ['logits', true, undefined],
    ['extra0', false, { binary_data_size: 80 }],
  ]);
  expect(mixed.values).toEqual(expected);
});

it('answers binary inputs with JSON when no output asks for binary, and a JSON request with binary outputs', async () => {
  const data = images(1);
  const expected = (await jsonInfer('torchcnn', 1, data)).values;
  const jsonOut = await binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [fp32(data)]);
  expect(jsonOut.headers.get('content-type')).toContain('application/json');
  expect(jsonOut.headers.get('inference-header-content-length')).toBeNull();
  expect((await readAnswer(jsonOut)).values).toEqual(expected);
  const binaryOut = await fetch(`${server.url}/v2/models/torchcnn/versions/1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data }],
      outputs: [{ name: 'logits', parameters: { binary_data: true } }],
    }),
  });
  expect(binaryOut.headers.get('content-type')).toBe('application/octet-stream');
  expect((await readAnswer(binaryOut)).values).toEqual(expected);
});

it('refuses malformed binary requests with the JSON route limits: 4xx JSON, never a 500', async () => {
  const one = fp32(images(1));
  const nan = fp32(images(1));
  nan.writeFloatLE(Number.NaN, 100);
  const triggered = fp32(images(1));
  triggered.writeFloatLE(2, 0); // the hostile model's trigger pixel: +Infinity logits
  const cases: [string, () => Promise<Response>, number, string][] = [
    [
      'header length past the body',
      () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [one], '999999'),
      400,
      'invalid_header',
    ],
    [
      'header length not a number',
      () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [one], 'ten'),
      400,
      'invalid_header',
    ],
    [
      'header length cuts the JSON',
      () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [one], '10'),
      400,
      'invalid_json',
    ],
    [
      'fewer bytes than binary_data_size',
      () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [one.subarray(0, 100)]),
      400,
      'invalid_inputs',
    ],
    [
      'bytes left over',
      () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [one, Buffer.alloc(8)]),
      400,
      'invalid_inputs',
    ],
    [
      'size that does not fit the shape',
      () =>
        binaryRequest('torchcnn', { inputs: [{ ...binaryInput(2), parameters: { binary_data_size: 784 * 4 } }] }, [
          one,
        ]),
      400,
      'invalid_shape',
    ],
    ['NaN in the tensor', () => binaryRequest('torchcnn', { inputs: [binaryInput(1)] }, [nan]), 400, 'invalid_value'],
    [
      'both data and binary_data_size',
      () => binaryRequest('torchcnn', { inputs: [{ ...binaryInput(1), data: [1] }] }, [one]),
      400,
      'invalid_inputs',
    ],
    [
      'binary_data that is not a boolean',
      () =>
        binaryRequest(
          'torchcnn',
          { inputs: [binaryInput(1)], outputs: [{ name: 'logits', parameters: { binary_data: 'yes' } }] },
          [one],
        ),
      400,
      'invalid_parameter',
    ],
    [
      'binary_data_size without the header',
      () =>
        fetch(`${server.url}/v2/models/torchcnn/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [binaryInput(1)] }),
        }),
      400,
      'invalid_inputs',
    ],
    [
      'over max_batch_size',
      () => binaryRequest('small', { inputs: [binaryInput(5)] }, [fp32(images(5))]),
      400,
      'batch_too_large',
    ],
    [
      'over the body limit',
      () => binaryRequest('small', { inputs: [binaryInput(30)] }, [fp32(images(30))]),
      413,
      'payload_too_large',
    ],
    [
      'non-finite outputs',
      () => binaryRequest('infinite', { inputs: [binaryInput(1)] }, [triggered]),
      422,
      'non_finite_output',
    ],
    ['unknown model', () => binaryRequest('nope', { inputs: [binaryInput(1)] }, [one]), 404, 'model_not_found'],
  ];
  for (const [what, send, status, code] of cases) {
    const r = await send();
    const text = await r.text();
    expect([what, r.status], text).toEqual([what, status]);
    expect(refusalOf(JSON.parse(text), new URL(r.url).pathname).code, what).toBe(code);
    expect(text, what).not.toMatch(/\/tmp|\/work|at .+\.ts/);
  }
});

it('answers generated hostile binary bodies with 4xx JSON', async () => {
  const one = fp32(images(1));
  const raw = (body: Uint8Array, headerLength: string) =>
    fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'Inference-Header-Content-Length': headerLength },
    });
  const json = (header: unknown) => Buffer.from(JSON.stringify(header));
  const sized = (size: unknown) => ({ inputs: [{ ...binaryInput(1), parameters: { binary_data_size: size } }] });
  const bodies: [Uint8Array, string][] = [
    [Buffer.concat([json([1, 2]), one]), String(json([1, 2]).length)],
    [Buffer.concat([json(sized(-4)), one]), String(json(sized(-4)).length)],
    [Buffer.concat([json(sized('3136')), one]), String(json(sized('3136')).length)],
    [Buffer.concat([json(sized(2 ** 53)), one]), String(json(sized(2 ** 53)).length)],
    [Buffer.concat([json({ ...sized(3136), parameters: { binary_data_output: 'yes' } }), one]), '0'],
    [Buffer.from([0xff, 0xfe, 0x00, 0x7b]), '2'],
    [json({ inputs: [binaryInput(1)] }), '-1'],
    [json({ inputs: [binaryInput(1)] }), '1e3'],
    [Buffer.alloc(0), '0'],
  ];
  // Random bytes with a header length inside them.
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  for (let i = 0; i < 20; i++) {
    const body = Uint8Array.from({ length: 1 + (next() % 4000) }, () => next() % 256);
    bodies.push([body, String(1 + (next() % body.length))]);
  }
  for (const [body, length] of bodies) {
    const r = await raw(body, length);
    const text = await r.text();
    expect(r.status, `${length}: ${text}`).toBeGreaterThanOrEqual(400);
    expect(r.status, text).toBeLessThan(500);
    expect(refusalOf(JSON.parse(text), new URL(r.url).pathname).code).toBeTruthy();
  }
});

it('announces the extension in the server metadata', async () => {
  const meta = (await (await fetch(`${server.url}/v2`)).json()) as { extensions: string[] };
  expect(meta.extensions).toContain('binary_tensor_data');
});
