/**
 * The v2 protocol over gRPC, called from Python with stubs that grpc_tools generates from the vendored
 * proto (as a KServe or Triton client would): health, metadata, and ModelInfer with raw and typed
 * contents, whose logits equal the HTTP JSON route's; bad requests are gRPC statuses, not crashes.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { boundedLibraryLog } from '../serve/grpc/library-log.ts';
import { grpcProtoRoot, grpcService } from '../serve/grpc/proto.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { frame, rawCall, unaryCall } from './helpers/grpc-requests.ts';
import { grpcPython, runPythonClient } from './helpers/python-grpc.ts';

let server: RunningServer;
let listeningBefore: Set<number>;

/** The inodes of this process's sockets (Linux: its fds that link to `socket:[inode]`). */
function ownSocketInodes(): Set<string | undefined> {
  return new Set(
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1]];
      } catch {
        return [];
      }
    }),
  );
}

/** TCP ports this process listens on (Linux: /proc/net/tcp{,6} rows in LISTEN whose socket is one of our fds). */
function ownListeningPorts(): Set<number> {
  const ours = ownSocketInodes();
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const row of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      if (fields[3] === '0A' && ours.has(fields[9])) ports.add(Number.parseInt(fields[1]?.split(':')[1] ?? '', 16));
    }
  return ports;
}

beforeAll(async () => {
  listeningBefore = process.platform === 'linux' ? ownListeningPorts() : new Set();
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-'));
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  server = await startServer({ models: root, port: 0, grpcPort: 0 });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const images = Array.from({ length: 2 * 784 }, (_, i) => (((i * 13) % 255) / 255 - 0.1307) / 0.3081);

it.skipIf(grpcPython === undefined)(
  'answers a Python gRPC client like the HTTP JSON route',
  async () => {
    // Asynchronously: the server answering it runs in this process.
    const out = await runPythonClient(
      ['test/helpers/grpc_client.py', `127.0.0.1:${server.grpcPort}`, 'torchcnn', '2'],
      {
        stdin: JSON.stringify(Array.from(Float32Array.from(images))),
      },
    );
    const result = JSON.parse(out) as {
      live: boolean;
      ready: boolean;
      model_ready: boolean;
      extensions: string[];
      inputs: unknown[];
      raw: { id: string; outputs: unknown[]; values: number[][] };
      contents: { values: number[][] };
      errors: Record<string, [string, string]>;
      config: Record<string, unknown>;
      config_wire: { response_field: number; fields: Record<string, unknown> };
      statistics: Record<string, unknown>[];
      statistics_all: { name: string }[];
      index: string[][];
    };
    expect([result.live, result.ready, result.model_ready]).toEqual([true, true, true]);
    // HTTP's: every one of them has its RPCs here too (model_repository: serve-grpc-control.test.ts).
    expect(result.extensions).toEqual(['binary_tensor_data', 'statistics', 'model_repository', 'model_configuration']);
    // ModelConfig answers what GET …/config does.
    const config = (await (await fetch(`${server.url}/v2/models/torchcnn/config`)).json()) as {
      name: string;
      platform: string;
      backend: string;
      max_batch_size: number;
      input: { name: string; data_type: string; dims: number[] }[];
      output: { name: string; data_type: string; dims: number[] }[];
      version_policy: Record<string, unknown>;
      dynamic_batching: { max_queue_delay_microseconds: number };
      instance_group: { kind: string }[];
    };
    const tensor = (t: { name: string; data_type: string; dims: number[] }) => [t.name, t.data_type, t.dims];
    expect(result.config).toEqual({
      name: 'torchcnn',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: config.max_batch_size,
      inputs: config.input.map(tensor),
      outputs: config.output.map(tensor),
      policy: Object.keys(config.version_policy)[0],
      queue_delay_us: config.dynamic_batching.max_queue_delay_microseconds,
      instance_kinds: config.instance_group.map((g) => g.kind),
    });
    expect(config.max_batch_size).toBeGreaterThan(0);
    expect(result.config.inputs).toEqual([['input', 'TYPE_FP32', [1, 28, 28]]]);
    // The field numbers on the wire, read without our .proto, are Triton's (grpc_service.proto, model_config.proto).
    expect(result.config_wire).toEqual({
      response_field: 1,
      fields: { 1: 'torchcnn', 2: 'onnxruntime_onnx', 4: config.max_batch_size, 17: 'onnxruntime' },
    });
    expect(result.inputs).toEqual([['input', 'FP32', [-1, 1, 28, 28]]]);
    expect(result.raw.id).toBe('g1');
    expect(result.raw.outputs).toEqual([['logits', 'FP32', [2, 10]]]);

    const http = await fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 1, 28, 28], datatype: 'FP32', data: images }] }),
    });
    const expected = ((await http.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data;
    expect(result.raw.values[0]).toEqual(expected);
    expect(result.contents.values[0]).toEqual(expected);
    expect(result.errors['unknown model']?.[0]).toBe('NOT_FOUND');
    expect(result.errors['wrong shape']?.[0]).toBe('INVALID_ARGUMENT');
    expect(result.errors['wrong shape']?.[1]).toContain('shape');
    expect(result.errors['no inputs']?.[0]).toBe('INVALID_ARGUMENT');
    expect(result.errors['contents and raw']).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/one or the other/)]);
    expect(result.errors['int contents']).toEqual([
      'INVALID_ARGUMENT',
      expect.stringMatching(/fp32_contents.*int_contents/),
    ]);
    expect(result.errors['short contents']).toEqual([
      'INVALID_ARGUMENT',
      expect.stringMatching(/6268 bytes of fp32_contents.*1568 FP32 values/),
    ]);
    expect(result.errors['nan contents']).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/data\[5\] is NaN/)]);
    // Extensions this server lacks are refused by name, never answered as if the parameter were absent.
    expect(result.errors['shared memory output']).toEqual([
      'INVALID_ARGUMENT',
      expect.stringMatching(/'shared_memory_region'.*does not implement/),
    ]);
    expect(result.errors.classification).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/'classification'/)]);
    expect(result.errors['no model name']).toEqual(['NOT_FOUND', expect.stringMatching(/model name is required/)]);
    // The id-and-parameters limit holds over gRPC too.
    expect(result.errors['large parameters']).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/over the 16384/)]);
    // Counted with the HTTP requests in the version's statistics.
    const stats = (await (await fetch(`${server.url}/v2/models/torchcnn/stats`)).json()) as {
      model_stats: { inference_stats: { success: { count: number }; fail: { count: number } } }[];
    };
    expect(stats.model_stats[0]?.inference_stats.success.count).toBe(3);
    // The wrong shape, the short and the NaN contents (the int contents are refused before the model is chosen).
    expect(stats.model_stats[0]?.inference_stats.fail.count).toBe(3);
    // ModelStatistics, taken before the HTTP request: the two gRPC calls of two images each, the three failures.
    expect(result.statistics).toEqual([
      {
        name: 'torchcnn',
        version: '1',
        inference_count: 4,
        execution_count: 2,
        success: 2,
        fail: 3,
        queue: 2,
        batch_sizes: [2],
      },
    ]);
    expect(result.statistics_all.map((s) => s.name)).toEqual(['torchcnn']);
    expect(result.index).toEqual([['torchcnn', '1', 'READY']]);
    expect(result.errors['config of unknown model']?.[0]).toBe('NOT_FOUND');
    expect(result.errors['statistics of unknown model']).toEqual(['NOT_FOUND', "model 'nope' is not loaded"]);
    expect(result.errors['statistics of unknown version']).toEqual([
      'NOT_FOUND',
      "model 'torchcnn' version 7 is not loaded",
    ]);
    expect(result.errors['config of malformed version']?.[0]).toBe('INVALID_ARGUMENT');
    expect(result.errors['statistics of a version of no model']).toEqual([
      'INVALID_ARGUMENT',
      'a version needs the name of its model',
    ]);
    expect(result.errors['index of another repository']).toEqual([
      'INVALID_ARGUMENT',
      expect.stringMatching(/one model repository/),
    ]);
  },
  90_000,
);

it.skipIf(grpcPython === undefined)(
  "refuses a message that would decode into too much before decoding it (an attack's 1 MB of empty inputs)",
  async () => {
    const script = [
      'import grpc, sys',
      'channel = grpc.insecure_channel(sys.argv[1])',
      "call = channel.unary_unary('/inference.GRPCInferenceService/ModelInfer', request_serializer=lambda b: b, response_deserializer=lambda b: b)",
      "bomb = b'\\x0a\\x08torchcnn' + b'\\x2a\\x00' * 500000",
      'for _ in range(4):',
      '    try:',
      '        call(bomb, timeout=60)',
      "        print('OK')",
      '    except grpc.RpcError as e:',
      '        print(e.code().name, e.details())',
    ].join('\n');
    const out = await runPythonClient(['-c', script, `127.0.0.1:${server.grpcPort}`]);
    expect(out.trim().split('\n')).toEqual(new Array(4).fill('INVALID_ARGUMENT the request has more than 16 inputs'));
    expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  },
  90_000,
);

it('gives back what a call held however it ends: streams of two messages (never answered by a handler) leave room for a request', async () => {
  const root = grpcProtoRoot();
  const Request = root.lookupType('inference.ModelInferRequest');
  const encode = (message: Record<string, unknown>) =>
    Buffer.from(Request.encode(Request.fromObject(message)).finish());
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  const call = (body: Buffer) => rawCall(session, 'ModelInfer', body);
  try {
    // Streams of two messages each, 1 MB and then halving sizes (an attack's recipe): were what they hold kept,
    // it would fill the 16 MiB held for requests waiting to within bytes, and the request below would not fit.
    const sizes = [...new Array(20).fill(1_000_000), ...Array.from({ length: 16 }, (_, k) => 2 ** (19 - k))];
    const statuses = new Set<string>();
    for (const size of sizes) {
      const message = frame(encode({ model_name: 'torchcnn', raw_input_contents: [Buffer.alloc(size)] }), false);
      statuses.add(await call(Buffer.concat([message, message])));
    }
    expect(statuses).toEqual(new Set([String(grpc.status.INVALID_ARGUMENT)])); // a second message on a unary call
    const image = Buffer.from(Float32Array.from(images.slice(0, 784)).buffer);
    const good = encode({
      model_name: 'torchcnn',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
      raw_input_contents: [image],
    });
    expect(await call(frame(good, false))).toBe('0');
  } finally {
    session.close();
  }
});

it('holds gRPC connections to a cap like HTTP: 300 silent sockets from one address keep at most 32 open', async () => {
  const sockets = Array.from({ length: 300 }, () => {
    const s = connect({ host: '127.0.0.1', port: server.grpcPort as number, localAddress: '127.0.0.2' });
    s.on('error', () => {});
    s.resume(); // read, so the server's close is seen
    return s;
  });
  const closed = sockets.map((s) => new Promise<boolean>((r) => s.once('close', () => r(true))));
  // The server closes them as they come; each client sees its close a moment later (later on a busy machine).
  const stillOpen = () => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
  const deadline = Date.now() + 15_000;
  while (stillOpen() > 32 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(stillOpen()).toBeLessThanOrEqual(32);
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  for (const s of sockets) s.destroy();
  await Promise.all(closed);
});

it('holds gRPC connections to a cap in all: 6 addresses × 30 silent sockets (each within its own 32) keep at most 128 open', async () => {
  const sockets = Array.from({ length: 180 }, (_, i) => {
    const localAddress = `127.0.0.${3 + (i % 6)}`;
    const s = connect({ host: '127.0.0.1', port: server.grpcPort as number, localAddress });
    s.on('error', () => {});
    s.resume(); // read, so the server's close is seen
    return s;
  });
  const closed = sockets.map((s) => new Promise<boolean>((r) => s.once('close', () => r(true))));
  await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r).once('close', r))));
  const stillOpen = () => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
  const deadline = Date.now() + 15_000;
  while (stillOpen() > 128 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(stillOpen()).toBeLessThanOrEqual(128);
  expect(stillOpen()).toBeGreaterThan(100); // the per-address cap did not do it: each address is under 32
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  for (const s of sockets) s.destroy();
  await Promise.all(closed);
});

it.skipIf(process.platform !== 'linux')(
  "grpc-js's own listener is no TCP port: only the limited front (and HTTP) listen, nothing to go around the limits by",
  () => {
    const added = [...ownListeningPorts()].filter((port) => !listeningBefore.has(port)).sort((a, b) => a - b);
    expect(added).toEqual([server.port, server.grpcPort as number].sort((a, b) => a - b));
    // It is a Unix socket in a folder only this user may enter (0700): no other local user reaches it either.
    const ours = ownSocketInodes();
    const paths = readFileSync('/proc/net/unix', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((row) => row.trim().split(/\s+/))
      .filter((fields) => ours.has(fields[6] as string) && /\/grpc-[^/]+\/grpc\.sock$/.test(fields[7] ?? ''))
      .map((fields) => fields[7] as string);
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect((statSync(dirname(path)).mode & 0o777).toString(8)).toBe('700');
  },
);

it('answers a name or version cut through a character (an emoji split by a length limit) with a 4xx status, and lives on', async () => {
  // grpc-js percent-encodes a status's details with encodeURI, which throws on half a character: an outside
  // attack's ModelConfig of version '1'×39 + an emoji, cut at 40 characters in its refusal, ended the process.
  const client = new (grpcService())(
    `127.0.0.1:${server.grpcPort}`,
    grpc.credentials.createInsecure(),
  ) as unknown as Record<string, (request: unknown, callback: (error: grpc.ServiceError | null) => void) => void> &
    grpc.Client;
  const call = (method: string, request: unknown) =>
    new Promise<[string, string]>((resolve) =>
      client[method]?.call(client, request, (error) =>
        resolve(error ? [grpc.status[error.code] ?? '', error.details] : ['OK', '']),
      ),
    );
  const emoji = '\u{1F600}';
  const version = `${'1'.repeat(39)}${emoji}`;
  const name = `${'a'.repeat(99)}${emoji}`;
  const answers = [];
  for (const method of ['ModelConfig', 'ModelStatistics', 'ModelReady', 'ModelMetadata']) {
    answers.push(await call(method, { name: 'torchcnn', version }));
    answers.push(await call(method, { name }));
  }
  answers.push(
    await call('ModelInfer', {
      model_name: name,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
      raw_input_contents: [Buffer.alloc(784 * 4)],
    }),
  );
  for (const [status, details] of answers) {
    expect(['INVALID_ARGUMENT', 'NOT_FOUND']).toContain(status);
    expect(details).toContain('\uFFFD'); // the half character, replaced
  }
  expect(await call('ServerLive', {})).toEqual(['OK', '']);
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
  client.close();
});

it('answers messages its decoder refuses as INVALID_ARGUMENT on every method, never INTERNAL', async () => {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const call = async (method: string, bytes: Buffer) => (await unaryCall(client, method, bytes)).status;
  const field = (n: number, payload: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, payload.length]), payload]);
  const input = (shape: Buffer) =>
    field(5, Buffer.concat([field(1, Buffer.from('input')), field(2, Buffer.from('FP32')), shape]));
  const shape = field(3, Buffer.from([1, 1, 28, 28]));
  const cases: [string, string, Buffer][] = [
    // Each passes the wire walk; protobufjs refuses it while decoding (grpc-js answered INTERNAL).
    ['ModelInfer', 'a model name that is not UTF-8', Buffer.concat([field(1, Buffer.from([0xff])), input(shape)])],
    [
      'ModelInfer',
      'a packed shape cut mid-varint',
      Buffer.concat([field(1, Buffer.from('torchcnn')), input(field(3, Buffer.from([0x81])))]),
    ],
    [
      'ModelInfer',
      'a parameter whose value is no InferParameter',
      Buffer.concat([
        field(1, Buffer.from('torchcnn')),
        field(4, Buffer.concat([field(1, Buffer.from('k')), field(2, Buffer.from([0xff]))])),
      ]),
    ],
    [
      'ModelInfer',
      'a five-byte tag past 32 bits',
      Buffer.concat([Buffer.from([0xaa, 0x80, 0x80, 0x80, 0x10, 0]), field(1, Buffer.from('torchcnn'))]),
    ],
    ['ServerLive', 'a field cut short', Buffer.from([0x0a, 0x05])],
  ];
  try {
    for (const [method, what, bytes] of cases)
      expect(await call(method, bytes), `${method}: ${what}`).toBe('INVALID_ARGUMENT');
    expect(await call('ServerLive', Buffer.alloc(0))).toBe('OK');
  } finally {
    client.close();
  }
});

it('answers a unary call without a whole request message, or with two, INVALID_ARGUMENT (grpc-js: UNIMPLEMENTED, "server streaming method")', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  const whole = frame(Buffer.alloc(0));
  const cases: [string, Buffer][] = [
    ['ModelInfer', Buffer.alloc(0)], // no message at all
    ['ModelInfer', frame(Buffer.alloc(100)).subarray(0, 20)], // a message cut short
    ['ServerLive', Buffer.concat([whole, whole])], // two messages
  ];
  try {
    for (const [method, body] of cases)
      expect(await rawCall(session, method, body), `${method}: ${body.length} bytes`).toBe(
        String(grpc.status.INVALID_ARGUMENT),
      );
    expect(await rawCall(session, 'ServerLive', whole)).toBe('0');
  } finally {
    session.destroy();
  }
});

it("holds a call's metadata to 16 KiB, as gRPC's C core does (Node took 64 KiB a stream, outside every budget)", async () => {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const live = async (bytes: number) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-padding', 'a'.repeat(bytes));
    return (await unaryCall(client, 'ServerLive', Buffer.alloc(0), {}, metadata)).status;
  };
  try {
    expect(await live(8_000)).toBe('OK');
    expect(await live(20_000)).toBe('RESOURCE_EXHAUSTED');
    expect(await live(0)).toBe('OK'); // the connection serves on
  } finally {
    client.close();
  }
  // A client's first calls on a new connection, sent before the server's settings have come (and been
  // acknowledged), are not held by the advertised limit: Node applies it only after the acknowledgement. The
  // header list is measured as it came, headers grpc-js reads itself or drops from its Metadata included.
  const big = 'a'.repeat(40_000);
  const cases: [string, Record<string, string>][] = [
    ['17 KB', { 'x-padding': 'a'.repeat(17_000) }],
    ['60 KB', { 'x-padding': 'a'.repeat(60_000) }],
    ['accept-encoding', { 'accept-encoding': big }],
    ['grpc-accept-encoding', { 'grpc-accept-encoding': big }],
    ['a content-type suffix', { 'content-type': `application/grpc+${big}` }],
    ['grpc-timeout', { 'grpc-timeout': `1${'0'.repeat(40_000)}S` }],
    ['a key grpc-js drops', { 'x!k': big }],
    ['a -bin value grpc-js drops', { 'x-bin': `!${big}` }],
  ];
  for (const [what, headers] of cases) {
    const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
    session.on('error', () => {});
    try {
      const status = await rawCall(session, 'ServerLive', frame(Buffer.alloc(0)), headers);
      expect([what, status]).toEqual([what, String(grpc.status.RESOURCE_EXHAUSTED)]);
      expect(await rawCall(session, 'ServerLive', frame(Buffer.alloc(0)))).toBe('0');
    } finally {
      session.destroy();
    }
  }
});

it("opens each connection's receive window to 1 MiB (at 64 KiB, 16 calls over a 150 ms link fell under the pace floor)", async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    // The window update follows the server's settings; a call's round trip later it has surely come.
    expect(await rawCall(session, 'ServerLive', frame(Buffer.alloc(0)))).toBe('0');
    expect(session.state.remoteWindowSize).toBeGreaterThan(1024 * 1024 - 1024); // less what this call sent
  } finally {
    session.destroy();
  }
});

it('resets a call whose trailers pass the metadata limit (gRPC clients send none; 60 KB were taken)', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    const withTrailers = (bytes: number) =>
      new Promise<{ status?: string; reset?: number }>((resolve) => {
        const stream = session.request(
          {
            ':method': 'POST',
            ':path': '/inference.GRPCInferenceService/ServerLive',
            'content-type': 'application/grpc',
            te: 'trailers',
          },
          { waitForTrailers: true },
        );
        let status: string | undefined;
        const read = (h: http2.IncomingHttpHeaders) => {
          if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        };
        stream
          .on('response', read)
          .on('trailers', read)
          .on('data', () => {});
        stream.on('error', () => {});
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'a'.repeat(bytes) }));
        stream.on('close', () => resolve(status === undefined ? { reset: stream.rstCode } : { status }));
        stream.end(frame(Buffer.alloc(0)));
      });
    expect(await withTrailers(60_000)).toEqual({ reset: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });
    expect(await withTrailers(100)).toEqual({ status: '0' });
  } finally {
    session.destroy();
  }
});

it("bounds grpc-js's own log: entries it drops from 60 calls' metadata (15 KB each) write a few escaped lines", async () => {
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    // An invalid key within the limit: grpc-js drops the entry and logs it (whole, it wrote +14.5 MiB in 5 s).
    for (let i = 0; i < 60; i++)
      expect(await rawCall(session, 'ServerLive', frame(Buffer.alloc(0)), { 'x!k': 'a'.repeat(15_000) })).toBe('0');
  } finally {
    process.stderr.write = write;
    session.destroy();
  }
  const lines = written
    .join('')
    .split('\n')
    .filter((line) => line.includes('grpc-js'));
  expect(lines.length).toBeGreaterThan(0); // what grpc-js says still shows
  expect(lines.length).toBeLessThanOrEqual(20);
  expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(300);
  // Control characters a client's bytes may carry are escaped (Node's HTTP/2 refuses them in header values,
  // so the logger is given one directly); past 20 lines a minute, the rest are held back.
  const direct: string[] = [];
  const log = boundedLibraryLog((line) => direct.push(line));
  for (let i = 0; i < 25; i++) log.error?.(`entry \x1b[31m${i}`);
  expect(direct).toHaveLength(20);
  expect(direct[0]).toBe('grpc-js E entry \\x1b[31m0');
});

it('answers a message whose compressed flag is neither 0 nor 1 INVALID_ARGUMENT (grpc-js read it as uncompressed)', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    for (const flag of [2, 7, 255]) {
      const message = frame(Buffer.alloc(0));
      message[0] = flag;
      expect([flag, await rawCall(session, 'ServerLive', message)]).toEqual([
        flag,
        String(grpc.status.INVALID_ARGUMENT),
      ]);
    }
    expect(await rawCall(session, 'ServerLive', frame(Buffer.alloc(0)))).toBe('0');
  } finally {
    session.destroy();
  }
});

it('answers a malformed grpc-timeout header INVALID_ARGUMENT, not INTERNAL, and honours a well-formed one', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  const live = (timeout: string) => rawCall(session, 'ServerLive', frame(Buffer.alloc(0)), { 'grpc-timeout': timeout });
  try {
    // grpc-js refused these as INTERNAL (gRPC's 500) before any handler ran.
    for (const timeout of ['abc', '5', 'S', '1x'])
      expect(await live(timeout), timeout).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect(await live('5S')).toBe('0');
    expect(await live('100m')).toBe('0');
  } finally {
    session.destroy();
  }
});

it('gives back what a call held when it is cancelled while its gzip-compressed message is still decompressing', async () => {
  // An outside attack: compressed messages are decompressed asynchronously, and grpc-js drops one decoded
  // after its call was reset before any listener sees it. 800 KB of raw contents gzip to ~1 KB each.
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n >= 128; n = Math.floor(n / 128)) out.push((n % 128) | 128);
    out.push(n);
    return Buffer.from(out);
  };
  const field = (n: number, payload: Buffer) => Buffer.concat([varint(n * 8 + 2), varint(payload.length), payload]);
  const message = (images: number, contents: Buffer) =>
    Buffer.concat([
      field(1, Buffer.from('torchcnn')),
      field(
        5,
        Buffer.concat([
          field(1, Buffer.from('input')),
          field(2, Buffer.from('FP32')),
          field(3, Buffer.concat([images, 1, 28, 28].map(varint))),
        ]),
      ),
      field(7, contents),
    ]);
  // 800 KB, 100 KB and 3 KB messages: the budget fills with the large ones and is topped up by the small.
  const bombs = [255, 31, 1].map((n) => frame(gzipSync(message(n, Buffer.alloc(n * 3136))), true));
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  const call = (body: Buffer, headers: Record<string, string>, reset: boolean) =>
    rawCall(session, 'ModelInfer', body, headers, reset);
  try {
    const image = Buffer.from(Float32Array.from(images.slice(0, 784)).buffer);
    const statuses = new Set<string>();
    for (let round = 0; round < 100; round++) {
      const bomb = bombs[round < 40 ? 0 : round < 80 ? 1 : 2] as Buffer;
      for (let i = 0; i < 10; i++) await call(bomb, { 'grpc-encoding': 'gzip' }, true);
      statuses.add(await call(frame(message(1, image), false), {}, false));
    }
    expect(statuses).toEqual(new Set(['0'])); // 8 (RESOURCE_EXHAUSTED) once bytes leaked, for good
  } finally {
    session.close();
  }
}, 60_000);
