/**
 * v2 runs the model as it is: a torch-exported model's own input, outputs and datatypes, no added
 * normalization or probabilities — its logits equal PyTorch's (test/fixtures/make-torch-onnx.py) for the
 * normalized tensor a KServe/Triton client sends. A static batch-1 export takes exactly one image, as in Triton.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ModelConfigType } from '../node/triton/schema.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { refusalFrom, refusalOf } from './helpers/refusal.ts';

let server: RunningServer;
const golden = JSON.parse(readFileSync('test/fixtures/torch-cnn-logits.json', 'utf8')) as { logits: number[][] };
const normalized = Array.from({ length: 2 * 784 }, (_, i) => (i / (2 * 784 - 1) - 0.1307) / 0.3081);

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-'));
  for (const [name, file] of [
    ['torchcnn', 'torch-cnn-opset13.onnx'],
    ['torchstatic', 'torch-cnn-static.onnx'],
    ['staticbatching', 'torch-cnn-static.onnx'],
  ] as const) {
    mkdirSync(join(root, name, '1'), { recursive: true });
    copyFileSync(join('test/fixtures', file), join(root, name, '1', 'model.onnx'));
  }
  // A config that batches a model whose first dimension is fixed at 1: Triton refuses it at load.
  writeFileSync(join(root, 'staticbatching', 'config.pbtxt'), 'max_batch_size: 8\n');
  // A second version of torchcnn: without a config.pbtxt every version is served.
  mkdirSync(join(root, 'torchcnn', '2'));
  copyFileSync(join('test/fixtures', 'torch-cnn-opset13.onnx'), join(root, 'torchcnn', '2', 'model.onnx'));
  server = await startServer({ models: root, port: 0 });
});
afterAll(async () => {
  await server?.close();
});

const infer = async (model: string, shape: number[], data: number[]) => {
  const r = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs: [{ name: 'input', shape, datatype: 'FP32', data }] }),
    headers: { 'content-type': 'application/json' },
  });
  return {
    status: r.status,
    body: (await r.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] },
  };
};

it("reports the model's own signature and returns PyTorch's logits for the normalized tensor", async () => {
  const meta = await (await fetch(`${server.url}/v2/models/torchcnn`)).json();
  expect(meta).toMatchObject({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
    outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
  });
  const { status, body } = await infer('torchcnn', [2, 1, 28, 28], normalized);
  expect(status).toBe(200);
  expect(body.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', [2, 10]]]);
  const expected = golden.logits.flat();
  body.outputs[0]?.data.forEach((v, i) => {
    expect(Math.abs(v - (expected[i] as number))).toBeLessThan(1e-5);
  });
});

it('serves a static batch-1 export with its own shape: one image per request', async () => {
  const meta = (await (await fetch(`${server.url}/v2/models/torchstatic`)).json()) as { inputs: { shape: number[] }[] };
  expect(meta.inputs[0]?.shape).toEqual([1, 1, 28, 28]);
  const one = await infer('torchstatic', [1, 1, 28, 28], normalized.slice(0, 784));
  expect(one.status).toBe(200);
  one.body.outputs[0]?.data.forEach((v, i) => {
    expect(Math.abs(v - (golden.logits[0]?.[i] as number))).toBeLessThan(1e-5);
  });
  expect((await infer('torchstatic', [2, 1, 28, 28], normalized)).status).toBe(400);
  // /predict still batches for it (image by image inside).
  const r = await fetch(`${server.url}/predict/torchstatic`, {
    method: 'POST',
    body: JSON.stringify({ inputs: [new Array(784).fill(0), new Array(784).fill(0.5)] }),
    headers: { 'content-type': 'application/json' },
  });
  expect(r.status).toBe(200);
  expect(((await r.json()) as unknown[]).length).toBe(2);
});

it("answers Triton's model configuration (GET …/config, as tritonclient's get_model_config asks): what is served, valid against inference.ModelConfig", async () => {
  for (const path of ['/v2/models/torchcnn/config', '/v2/models/torchcnn/versions/1/config']) {
    const response = await fetch(`${server.url}${path}`);
    expect(response.status).toBe(200);
    const config = (await response.json()) as Record<string, unknown>;
    // Triton's own schema (vendored from model_config.proto) accepts it field for field.
    const message = ModelConfigType.fromObject(config);
    expect(ModelConfigType.verify(message)).toBeNull();
    expect(ModelConfigType.toObject(message, { enums: String, longs: Number, defaults: false })).toMatchObject({
      name: 'torchcnn',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 64, // the server's batch limit: the model takes any batch
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [1, 28, 28] }],
      output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [10] }],
      // No config.pbtxt: this server serves every version, and says so (Triton's default would be the newest).
      version_policy: { all: {} },
      dynamic_batching: {},
    });
  }
  // Metadata lists every version served, whichever version was asked for (each answers infer).
  for (const path of ['/v2/models/torchcnn', '/v2/models/torchcnn/versions/1']) {
    const meta = (await (await fetch(`${server.url}${path}`)).json()) as { versions: string[] };
    expect(meta.versions, path).toEqual(['1', '2']);
  }
  for (const version of ['1', '2']) {
    const r = await fetch(`${server.url}/v2/models/torchcnn/versions/${version}/ready`);
    expect(r.status).toBe(200);
  }
  // Not ready is a 4xx in the protocol (Triton: 400), an unknown version too.
  expect((await fetch(`${server.url}/v2/models/torchcnn/versions/9/ready`)).status).toBe(400);
  // A static batch-1 export: no batching, full dims, as Triton describes such a model.
  const fixed = (await (await fetch(`${server.url}/v2/models/torchstatic/config`)).json()) as Record<string, unknown>;
  expect(fixed).toMatchObject({ max_batch_size: 0, input: [{ dims: [1, 1, 28, 28] }] });
  expect(fixed).not.toHaveProperty('dynamic_batching');
  const index = await fetch(`${server.url}/v2/repository/index`, { method: 'POST' });
  const contradicted = (await index.json()) as { name: string; state: string; reason: string }[];
  expect(contradicted.find((e) => e.name === 'staticbatching')?.state).toBe('UNAVAILABLE');
  expect(contradicted.find((e) => e.name === 'staticbatching')?.reason).toMatch(
    /max_batch_size 8 batches the model, but its input has a fixed first dimension of 1/,
  );
  const unknown = await fetch(`${server.url}/v2/models/nope/config`);
  expect([unknown.status, (await refusalFrom(unknown)).code]).toEqual([404, 'model_not_found']);
});

it('reads request bodies sent compressed as Triton clients send them (gzip, deflate), refuses codings it does not read, and bounds the decoded size', async () => {
  const body = JSON.stringify({
    inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: normalized }],
  });
  const post = (bytes: Uint8Array, encoding: string, type = 'application/json', extra: Record<string, string> = {}) =>
    fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { 'content-type': type, 'content-encoding': encoding, ...extra },
    });
  const plain = (await (await post(Buffer.from(body), 'identity')).json()) as { outputs: unknown };
  for (const [encoding, bytes] of [
    ['gzip', gzipSync(body)],
    ['deflate', deflateSync(body)],
    ['br', brotliCompressSync(body)],
  ] as const) {
    const response = await post(bytes, encoding);
    expect([encoding, response.status]).toEqual([encoding, 200]);
    expect(((await response.json()) as { outputs: unknown }).outputs).toEqual(plain.outputs);
  }
  // The binary tensor extension, compressed whole: its header length counts the decoded bytes.
  const header = JSON.stringify({
    inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 2 * 784 * 4 } }],
  });
  const binary = Buffer.concat([Buffer.from(header), Buffer.from(Float32Array.from(normalized).buffer)]);
  const packed = await post(gzipSync(binary), 'gzip', 'application/octet-stream', {
    'inference-header-content-length': String(Buffer.byteLength(header)),
  });
  expect(packed.status).toBe(200);
  expect(((await packed.json()) as { outputs: unknown }).outputs).toEqual(plain.outputs);

  const codes = async (response: Response) => [response.status, (await refusalFrom(response)).code];
  expect(await codes(await post(Buffer.from(body), 'compress'))).toEqual([415, 'unsupported_content_encoding']);
  expect(await codes(await post(Buffer.from(body), 'gzip, br'))).toEqual([415, 'unsupported_content_encoding']);
  expect(await codes(await post(Buffer.from(body), 'br'))).toEqual([400, 'invalid_encoding']); // labelled, not encoded
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros in ~64 KB
  expect(bomb.length).toBeLessThan(1024 * 1024);
  expect(await codes(await post(bomb, 'gzip'))).toEqual([413, 'payload_too_large']);
  // zlib-wrapped deflate and brotli too (a deflate bomb was a 400: the raw-deflate retry hid the 413).
  const zeros = Buffer.alloc(2 * 1024 * 1024);
  expect(await codes(await post(deflateSync(zeros), 'deflate'))).toEqual([413, 'payload_too_large']);
  expect(await codes(await post(brotliCompressSync(zeros), 'br'))).toEqual([413, 'payload_too_large']);
});

it('refuses tensor parameters of extensions it lacks (shared memory, classification) by name, as Triton clients need to know', async () => {
  const image = new Array(784).fill(0);
  const ask = async (parameters: Record<string, unknown>, where: 'input' | 'output') => {
    const input = { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: image };
    const body =
      where === 'input'
        ? { inputs: [{ ...input, parameters }] }
        : { inputs: [input], outputs: [{ name: 'logits', parameters }] };
    const r = await fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, error: r.ok ? undefined : await refusalFrom(r) };
  };
  for (const [parameters, where, named] of [
    [{ classification: 2 }, 'output', 'classification'],
    [{ shared_memory_region: 'r0', shared_memory_byte_size: 40 }, 'output', 'shared_memory_region'],
    [{ shared_memory_region: 'r0' }, 'input', 'shared_memory_region'],
  ] as const) {
    const { status, error } = await ask(parameters, where);
    expect([status, error?.code], named).toEqual([400, 'unsupported_parameter']);
    expect(error?.message).toContain(`'${named}'`);
  }
  // binary_data_output and other parameters are still taken as before.
  expect((await ask({ binary_data: false }, 'output')).status).toBe(200);
});

it('refuses a request whose id and parameters would hold more than 16,384 characters while it waits', async () => {
  const image = new Array(784).fill(0);
  const send = (extra: Record<string, unknown>) =>
    fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: image }],
        ...extra,
      }),
    });
  for (const extra of [
    { id: 'i'.repeat(20_000) },
    { parameters: { pad: 'p'.repeat(20_000) } },
    { parameters: { nested: { deep: ['x'.repeat(20_000)] } } },
  ]) {
    const r = await send(extra);
    expect(r.status).toBe(400);
    expect((await refusalFrom(r)).message).toMatch(/over the 16384/);
  }
  const ok = await send({ id: 'request-42', parameters: { note: 'n'.repeat(1000) } });
  expect(ok.status).toBe(200);
  expect(((await ok.json()) as { id: string }).id).toBe('request-42');
});

it('refuses a binary-extension header over 65,536 bytes: keys the schema drops would stay with the body while it waits', async () => {
  const send = (junk: number) => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 } }],
        junk: 'j'.repeat(junk),
      }),
    );
    return fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) },
      body: Buffer.concat([header, Buffer.alloc(3136)]),
    });
  };
  const big = await send(70_000);
  expect(big.status).toBe(400);
  expect((await refusalFrom(big)).message).toMatch(/at most 65536/);
  expect((await send(1000)).status).toBe(200);
});

it('refuses on every /v2 route as the protocol writes errors, { "error": "<message>" } (the code beside it), and elsewhere as { error: { code, message } }', async () => {
  const cases: [path: string, init: RequestInit, status: number, code: string][] = [
    ['/v2/models/nope', {}, 404, 'model_not_found'],
    ['/v2/models/nope/config', {}, 404, 'model_not_found'],
    ['/v2/models/torchcnn/versions/x', {}, 400, 'invalid_version'],
    ['/v2/models/torchcnn/infer', { method: 'POST', body: '{"inputs": [' }, 400, 'invalid_json'],
    ['/v2/models/torchcnn/infer', { method: 'POST', body: '{"inputs": []}' }, 400, 'invalid_request'],
    [
      '/v2/models/torchcnn/infer',
      {
        method: 'POST',
        body: JSON.stringify({
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }],
          outputs: [{ name: 'logits' }, { name: 'logits' }],
        }),
      },
      400,
      'invalid_outputs',
    ],
    ['/v2/models/torchcnn/infer', { method: 'POST', body: 'x'.repeat(9 << 20) }, 413, 'payload_too_large'],
    ['/v2/models/stats/nope', {}, 404, 'not_found'],
    ['/v2/repository/models/torchcnn/unload', { method: 'POST' }, 400, 'model_control'],
    ['/v2/no/such/route', {}, 404, 'not_found'],
    ['/api/models/nope/versions/1/model.onnx', {}, 404, 'not_found'],
  ];
  for (const [path, init, status, code] of cases) {
    const r = await fetch(`${server.url}${path}`, { ...init, headers: { 'content-type': 'application/json' } });
    const body = (await r.json()) as { error: unknown; code?: unknown };
    expect([path, r.status], JSON.stringify(body)).toEqual([path, status]);
    if (path.startsWith('/v2')) {
      // The protocol's $inference_error_response: an object whose "error" is a string.
      expect(typeof body.error, path).toBe('string');
      expect(body.code, path).toBe(code);
    } else {
      expect(body.error, path).toMatchObject({ code });
    }
  }
  // The OpenAPI document says so: every /v2 route's error answers are ProtocolError, no other route's.
  const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }>
    >;
  };
  const refs = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.values(methods).flatMap((operation) =>
      Object.entries(operation.responses)
        .filter(([status]) => Number(status) >= 400)
        .map(([status, response]) => [path, status, response.content?.['application/json']?.schema?.$ref] as const),
    ),
  );
  expect(refs.length).toBeGreaterThan(10);
  for (const [path, status, ref] of refs) {
    // Readiness answers 400 with its { ready: false } body, not an error (the protocol's 4xx for not ready).
    if ((ref === undefined || ref.endsWith('/ModelReady')) && path.endsWith('/ready') && status === '400') continue;
    expect(ref, `${path} ${status}`).toBe(
      path.startsWith('/v2') ? '#/components/schemas/ProtocolError' : '#/components/schemas/Error',
    );
  }
});

it('refuses in the protocol shape what Node refuses before the app, when the request line named a /v2 path', async () => {
  const raw = (bytes: string) =>
    new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write(bytes));
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      socket.on('error', reject);
      socket.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
        resolve({ status, body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) });
      });
    });
  const cases: [request: string, path: string, status: number, code: string][] = [
    ['GET /v2/models/torchcnn HTTP/1.1\r\n\r\n', '/v2/models/torchcnn', 400, 'bad_request'], // no Host
    ['GET /v2/models/torchcnn HTTP/1.1\r\nHost: a b\r\n\r\n', '/v2/models/torchcnn', 400, 'bad_request'],
    [
      'POST /v2/models/torchcnn/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      '/v2/models/torchcnn/infer',
      400,
      'malformed_request',
    ],
    [
      `GET /v2/models/torchcnn HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
      '/v2/models/torchcnn',
      431,
      'headers_too_large',
    ],
    ['CONNECT /v2/models/torchcnn HTTP/1.1\r\nHost: x\r\n\r\n', '/v2/models/torchcnn', 405, 'method_not_allowed'],
    ['GET /api/models HTTP/1.1\r\n\r\n', '/api/models', 400, 'bad_request'],
  ];
  for (const [request, path, status, code] of cases) {
    const answer = await raw(request);
    expect([path, answer.status], JSON.stringify(answer.body)).toEqual([path, status]);
    expect(refusalOf(answer.body, path).code, path).toBe(code);
  }
});
