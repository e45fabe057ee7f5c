/**
 * Triton's ModelStreamInfer: a Python client (grpc_tools stubs, the answers' field numbers read off the wire)
 * streams requests as tritonclient's async_stream_infer does and gets one answer per request, in order, the
 * failures as error_message with their ids; HTTP/2 clients made by hand check that a stream's requests are
 * taken one at a time, so one that stops reading holds one answer, and one that floods is cut.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { grpcProtoRoot } from '../serve/grpc/proto.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { addWideModel, callStream, frame, inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';
import { grpcPython, runPythonClient } from './helpers/python-grpc.ts';
import { until } from './helpers/until.ts';

const MiB = 1024 * 1024;
const StreamAnswer = grpcProtoRoot().lookupType('inference.ModelStreamInferResponse');
let server: RunningServer;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-stream-'));
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  addWideModel(root); // 64 images answer 1 MiB
  server = await startServer({ models: root, port: 0, grpcPort: 0, maxBodyBytes: 300_000 });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const image = Array.from({ length: 784 }, (_, i) => (((i * 13) % 255) / 255 - 0.1307) / 0.3081);

/** A version's statistics over HTTP: requests that succeeded and failed. */
async function counts(model: string): Promise<{ success: number; fail: number }> {
  const body = (await (await fetch(`${server.url}/v2/models/${model}/stats`)).json()) as {
    model_stats: { inference_stats: { success: { count: number }; fail: { count: number } } }[];
  };
  const stats = body.model_stats[0]?.inference_stats;
  return { success: stats?.success.count ?? 0, fail: stats?.fail.count ?? 0 };
}

it.skipIf(grpcPython === undefined)(
  "answers a Python client's stream in order, a failed request as error_message with its id, as Triton does",
  async () => {
    const before = await counts('torchcnn');
    const out = await runPythonClient(
      ['test/helpers/grpc_stream_client.py', `127.0.0.1:${server.grpcPort}`, 'torchcnn'],
      {
        stdin: JSON.stringify(image),
      },
    );
    const result = JSON.parse(out) as {
      answers: { error: string; id: string; model: string; outputs: unknown[]; values: number[][] }[];
      wire: [number, number][][];
      empty: number;
    };
    expect(result.answers.map((a) => a.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(result.answers.map((a) => a.error)).toEqual([
      '',
      "unknown model 'nope'",
      expect.stringMatching(/shape .*got \[1,1,28,27\]/),
      '',
      '',
    ]);
    // A failure carries only the id (Triton clears the rest), and the stream goes on past it.
    expect(result.answers[1]).toEqual({ error: "unknown model 'nope'", id: 'b', model: '', outputs: [], values: [] });
    expect(result.answers[3]?.outputs).toEqual([['logits', 'FP32', [3, 10]]]);
    // The logits are the HTTP JSON route's for the same image.
    const http = await fetch(`${server.url}/v2/models/torchcnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: image }] }),
    });
    const expected = ((await http.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data;
    expect(result.answers[0]?.values[0]).toEqual(expected);
    expect(result.answers[4]?.values[0]).toEqual(expected);
    // On the wire, read without our .proto: an answer is infer_response (field 2) alone, a failure also
    // error_message (field 1), both length-delimited (wire type 2): Triton's numbers.
    expect(result.wire).toEqual([
      [[2, 2]],
      [
        [1, 2],
        [2, 2],
      ],
    ]);
    expect(result.empty).toBe(0);
    // Counted as ModelInfer's are: three answered (a, d, e, and w1 on the wire check), the wrong shape failed.
    const after = await counts('torchcnn');
    expect(after.success - before.success).toBe(5); // the HTTP request too
    expect(after.fail - before.fail).toBe(1);
  },
  90_000,
);

/** A ModelStreamInfer stream made by hand: its frames sent at once; answers and status as they come. */
function handStream(
  session: http2.ClientHttp2Session,
  body: Buffer,
  pauseOnAnswer: boolean,
  headers: Record<string, string> = {},
) {
  return readAnswers(callStream(session, 'ModelStreamInfer', headers), pauseOnAnswer, body);
}

/** Sends `body` (ended unless empty) and reads the stream's answers and status as they come. */
function readAnswers(stream: http2.ClientHttp2Stream, pauseOnAnswer: boolean, body: Buffer) {
  const answers: { error: string; id: string }[] = [];
  let pending = Buffer.alloc(0);
  let status: string | undefined;
  let message: string | undefined;
  let closed = false;
  const read = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-status'] === undefined) return;
    status = String(h['grpc-status']);
    message = decodeURIComponent(String(h['grpc-message'] ?? ''));
  };
  stream.on('response', (h) => {
    read(h);
    if (pauseOnAnswer) stream.pause(); // the answers' data waits in the server
  });
  stream.on('trailers', read);
  stream.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const decoded = StreamAnswer.decode(pending.subarray(5, 5 + pending.readUInt32BE(1))) as unknown as {
        error_message: string;
        infer_response?: { id: string };
      };
      answers.push({ error: decoded.error_message, id: decoded.infer_response?.id ?? '' });
      pending = pending.subarray(5 + pending.readUInt32BE(1));
    }
  });
  stream.on('error', () => {});
  stream.on('close', () => {
    closed = true;
  });
  if (body.length > 0) stream.end(body);
  return {
    stream,
    answers,
    status: () => status,
    message: () => message,
    closed: () => closed,
    rstCode: () => stream.rstCode,
  };
}

/** ModelInferRequest bytes with an id. */
function request(model: string, images: number, id: string): Buffer {
  const Request = grpcProtoRoot().lookupType('inference.ModelInferRequest');
  const message = Request.decode(inferRequestBytes(model, images)) as unknown as { id: string };
  message.id = id;
  return Buffer.from(Request.encode(message).finish());
}

it('takes a stream one request at a time: a client that stops reading has one answer run, the rest wait in it', async () => {
  const before = await counts('wide');
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    const body = Buffer.concat(Array.from({ length: 6 }, (_, i) => frame(request('wide', 64, `r${i}`))));
    const s = handStream(session, body, true);
    // Its first answer (1 MiB) cannot leave through the 64 KiB window: nothing more is read and run.
    await until(async () => (await counts('wide')).success > before.success);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await counts('wide')).success - before.success).toBe(1);
    // Reading again, it gets all six, in order.
    s.stream.resume();
    await until(() => s.status() !== undefined);
    expect(s.status()).toBe('0');
    expect(s.answers.map((a) => a.id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    expect((await counts('wide')).success - before.success).toBe(6);
  } finally {
    session.destroy();
  }
}, 60_000);

it("paused streams hold neither the budget for requests being decoded nor anyone's answers: a unary client that reads is served", async () => {
  const sessions = Array.from({ length: 12 }, () => {
    const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
    session.on('error', () => {});
    return session;
  });
  try {
    // Each stream: three 200 KB requests, its reading stopped at the first answer.
    const body = Buffer.concat([0, 1, 2].map((i) => frame(request('wide', 64, `p${i}`))));
    const streams = sessions.map((session) => handStream(session, body, true));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const { status, answer } = await unaryCall(client, 'ModelInfer', inferRequestBytes('wide', 64));
    client.close();
    expect(status).toBe('OK');
    expect(answer?.length).toBeGreaterThan(MiB);
    expect(streams.every((s) => !s.closed() || s.answers.length > 0)).toBe(true);
  } finally {
    for (const s of sessions) s.destroy();
  }
}, 60_000);

it('a client pipelining single-image requests gets every answer in order; one sending empty messages far ahead is cut', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  try {
    // Twenty requests of one image written at once (what a 64 KiB stream window lets a client send ahead).
    const ids = Array.from({ length: 20 }, (_, i) => `q${i}`);
    const pipelined = handStream(session, Buffer.concat(ids.map((id) => frame(request('torchcnn', 1, id)))), false);
    await until(() => pipelined.status() !== undefined);
    expect(pipelined.status()).toBe('0');
    expect(pipelined.answers).toEqual(ids.map((id) => ({ error: '', id })));
    // 2,000 empty messages in one write: each would wait in grpc-js as an object of its own (thousands a
    // stream took +2 GiB on unary calls): the stream is cut once it is 128 ahead.
    const flood = handStream(session, Buffer.concat(Array.from({ length: 2000 }, () => frame(Buffer.alloc(0)))), false);
    await until(flood.closed);
    expect(flood.rstCode()).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(flood.answers.length).toBeLessThanOrEqual(128);
  } finally {
    session.destroy();
  }
}, 60_000);

/** A stream's frames on a session of its own, for a server of its own. */
function streamOn(port: number, body: Buffer, pauseOnAnswer: boolean, headers: Record<string, string> = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  return { session, ...handStream(session, body, pauseOnAnswer, headers) };
}

it("decompresses a stream's gzip messages one at a time, as they are taken: six 1 MB messages of 1 KB each in one chunk, behind an unread answer, never take more than one message's room", async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-stream-gzip-'));
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  addWideModel(root);
  // Room for three decompressed messages at once (each takes the message limit while it is decompressed).
  const own = await startServer({
    models: root,
    port: 0,
    grpcPort: 0,
    maxBodyBytes: 1_100_000,
    maxBatch: 512,
    arrivingGrpcBytes: { freeBytes: 16 * 1024, total: 3.5 * MiB, perClient: 3.5 * MiB },
  });
  try {
    // The first answer (1 MiB) waits in the server behind the client's shut window; then 330 images of zeros
    // (1 MB, 1 KB gzipped) six times, in the same write. All decompressed at once, the fourth was refused
    // (RESOURCE_EXHAUSTED, the stream ended); and an outside attack held 7 MB a stream this way.
    const big = gzipSync(request('torchcnn', 330, 'z'));
    const body = Buffer.concat([frame(request('wide', 64, 'w')), ...Array.from({ length: 6 }, () => frame(big, true))]);
    const s = streamOn(own.grpcPort as number, body, true, { 'grpc-encoding': 'gzip' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    s.stream.resume();
    await until(() => s.status() !== undefined);
    expect(s.status()).toBe('0');
    expect(s.answers).toEqual([{ error: '', id: 'w' }, ...Array.from({ length: 6 }, () => ({ error: '', id: 'z' }))]);
    s.session.destroy();
    // A body that is not gzip is the client's error: INVALID_ARGUMENT (grpc-js's own answer was INTERNAL),
    // and only once the requests before it are answered (a re-attack: the one before was lost 10 times in 10).
    const valid = [frame(request('torchcnn', 1, 'a')), frame(gzipSync(request('torchcnn', 1, 'b')), true)];
    const bad = streamOn(
      own.grpcPort as number,
      Buffer.concat([...valid, frame(Buffer.from('not gzip at all'), true)]),
      false,
      { 'grpc-encoding': 'gzip' },
    );
    await until(() => bad.status() !== undefined);
    expect([bad.status(), bad.message()]).toEqual(['3', 'the message is not valid gzip']);
    expect(bad.answers.map((a) => a.id)).toEqual(['a', 'b']);
    bad.session.destroy();
  } finally {
    await own.close();
  }
}, 60_000);

/** A server of its own for a test that stops it: torchcnn in a fresh repository, a 120 s exit timeout (never reached). */
async function stoppingServer(prefix: string): Promise<RunningServer> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(root, 'torchcnn', '1'), { recursive: true });
  copyFileSync('test/fixtures/torch-cnn-opset13.onnx', join(root, 'torchcnn', '1', 'model.onnx'));
  return startServer({ models: root, port: 0, grpcPort: 0, exitTimeoutMs: 120_000 });
}

it('a stopping server ends its streams once their requests under way are answered, and resets calls left open (each held shutdown for the whole exit timeout)', async () => {
  const own = await stoppingServer('models-grpc-stream-stop--');
  const port = own.grpcPort as number;
  const idle = streamOn(port, Buffer.alloc(0), false);
  idle.stream.write(frame(request('torchcnn', 1, 'i1'))); // answered, then the stream is left open
  await until(() => idle.answers.length === 1);
  // One ended by grpc-js itself (a corrupt body) whose client never ends its side, and a unary call whose
  // half-close never comes: each held shutdown for the whole exit timeout too.
  const corrupt = streamOn(port, Buffer.alloc(0), false, { 'grpc-encoding': 'gzip' });
  corrupt.stream.write(frame(Buffer.from('not gzip'), true));
  await until(() => corrupt.status() !== undefined);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const waiting = callStream(session, 'ModelInfer');
  waiting.on('error', () => {});
  // Its request whole, but not its half-close: grpc-js never starts the handler, nothing is under way.
  waiting.write(frame(request('torchcnn', 1, 'u')));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await own.close(); // within the test's timeout: not the 120 s exit timeout
  await until(() => idle.status() !== undefined && corrupt.closed() && waiting.closed);
  expect([idle.status(), idle.message()]).toEqual(['14', 'the server is stopping']);
  expect(corrupt.rstCode()).toBe(http2.constants.NGHTTP2_NO_ERROR);
  // Nothing was under way: the client may send it elsewhere.
  expect(waiting.rstCode).toBe(http2.constants.NGHTTP2_REFUSED_STREAM);
  for (const s of [idle.session, corrupt.session, session]) s.destroy();
}, 60_000);

it('a stopping server closes a connection whose header block was cut mid-way (it held shutdown for the whole exit timeout)', async () => {
  const own = await stoppingServer('models-grpc-stream-cut--');
  const socket = connect(own.grpcPort as number, '127.0.0.1');
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', () => {});
  // The preface, empty SETTINGS, then a HEADERS frame on stream 1 without END_HEADERS: its CONTINUATION never comes.
  const headers = Buffer.from([0x83, 0x86]); // :method POST, :scheme http (HPACK's static table)
  socket.write(
    Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      Buffer.from([0, 0, headers.length, 1, 0, 0, 0, 0, 1]),
      headers,
    ]),
  );
  // A call on another connection is answered meanwhile: the server is up.
  const answered = streamOn(own.grpcPort as number, frame(request('torchcnn', 1, 'x')), false);
  await until(() => answered.status() !== undefined);
  expect(answered.status()).toBe('0');
  await own.close(); // within the test's timeout: not the 120 s exit timeout
  await closed;
  answered.session.destroy();
}, 30_000);

it('a stopping server answers a stream whose client had ended its side to its end, OK, and ends one still sending UNAVAILABLE after the request under way', async () => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-stream-ended-'));
  addWideModel(root);
  const own = await startServer({ models: root, port: 0, grpcPort: 0, exitTimeoutMs: 120_000 });
  const port = own.grpcPort as number;
  // Each answer (1 MiB) waits for its client to read: it is under way when the server stops.
  const done = streamOn(port, frame(request('wide', 64, 'a0')), true);
  // Two requests, its side not ended: it may send more.
  const more = streamOn(port, Buffer.alloc(0), true);
  more.stream.write(Buffer.concat(['b0', 'b1'].map((id) => frame(request('wide', 64, id)))));
  // Twelve small requests and the half-close, all arrived (3 KB each, within the window); their answers (16 KB
  // each) wait for the client to read.
  const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
  const all = streamOn(port, Buffer.concat(ids.map((id) => frame(request('wide', 1, id)))), true);
  const responded = (s: typeof done) => new Promise((resolve) => s.stream.once('response', resolve));
  await Promise.all([responded(done), responded(more), responded(all)]);
  const closing = own.close();
  await new Promise((resolve) => setTimeout(resolve, 600)); // two of the stopping server's sweeps
  for (const s of [done, more, all]) s.stream.resume();
  await closing;
  await until(() => done.status() !== undefined && more.status() !== undefined && all.status() !== undefined);
  // Before: the one under way, then UNAVAILABLE (1 of 12 answered).
  expect([all.status(), all.answers.map((a) => a.id)]).toEqual(['0', ids]);
  // Before: UNAVAILABLE for both, though every request of the first was answered.
  expect([done.status(), done.answers.map((a) => a.id)]).toEqual(['0', ['a0']]);
  expect([more.status(), more.message(), more.answers.map((a) => a.id)]).toEqual([
    '14',
    'the server is stopping',
    ['b0'],
  ]);
  for (const s of [done, more, all]) s.session.destroy();
}, 60_000);

it('a stopping server cuts an answer its client has taken no byte of for 3 s (a window kept shut held it for the whole exit timeout)', async () => {
  const own = await stoppingServer('models-grpc-stream-shut--');
  // A stream window of 0: the answer's headers come, its message never can.
  const session = http2.connect(`http://127.0.0.1:${own.grpcPort}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => {});
  const shut = callStream(session, 'ModelInfer');
  shut.on('error', () => {});
  const responded = new Promise((resolve) => shut.once('response', resolve));
  shut.end(frame(request('torchcnn', 1, 's')));
  await responded;
  const started = performance.now();
  await own.close(); // within the test's timeout: not the 120 s exit timeout
  await until(() => shut.closed);
  expect(shut.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
  expect(performance.now() - started).toBeGreaterThanOrEqual(3000); // it had its 3 s to take a byte
  session.destroy();
}, 30_000);

it('ends a stream whose last message is cut short INVALID_ARGUMENT, after answering the whole ones (it ended OK, the part dropped)', async () => {
  const cut = frame(request('torchcnn', 1, 'c')).subarray(0, 30);
  const s = streamOn(server.grpcPort as number, Buffer.concat([frame(request('torchcnn', 1, 'w')), cut]), false);
  try {
    await until(() => s.status() !== undefined);
    expect([s.status(), s.message(), s.answers.map((a) => a.id)]).toEqual([
      '3',
      'the stream ended inside a request message',
      ['w'],
    ]);
  } finally {
    s.session.destroy();
  }
}, 30_000);
