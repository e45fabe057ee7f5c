/**
 * gRPC calls that never finish, and the requests they held. A unary call whose request came whole and whose
 * client never ended its side (half-closed): its handler never runs, so its call stayed open for as long as
 * the connection did, with two things held: the decoded request, in the budget for requests decoded — 16
 * such calls of 1 MB held all of it, and every other client's ModelInfer was RESOURCE_EXHAUSTED for good —
 * and, outside every budget, the chunks grpc-js had read the message from (512 such calls: +502 MiB after
 * GC). Now the call is answered INVALID_ARGUMENT 3 s after its request came, the chunks go as soon as the
 * message is whole, and until its half-close the request holds the room it took arriving (per connection,
 * queued, given in turns), not room among requests decoded: answered and reopened, 32 such calls held that
 * budget for as long as their client went on. And a ModelStreamInfer whose client never reads: its answer waits to leave, and the
 * request it answered was kept with it, after the budget had counted it returned (2,048 streams: +1.4 GB).
 */
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { frame, grpcStream, inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';
import { splitEndStreamProxy } from './helpers/split-end-stream-proxy.ts';

const MiB = 1024 * 1024;
let server: RunningServer;
/** A valid request of ~1 MB (318 images: decoded, then refused by the model's batch limit once run). */
let large: Buffer;

beforeAll(async () => {
  server = await startServer({ models: makeTinyRepository(), port: 0, grpcPort: 0 });
  large = frame(inferRequestBytes('tiny', 318));
}, 60_000);
afterAll(async () => {
  await server?.close();
});

it('answers a request sent whole without its half-close INVALID_ARGUMENT, and its room goes back', async () => {
  // 16 of them fill the budget for decoded requests (16 × the 1 MiB message limit).
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  const calls = Array.from({ length: 16 }, () => {
    const { stream, status } = grpcStream(session, 'ModelInfer');
    let details = '';
    stream.on('response', (h) => {
      details = String(h['grpc-message'] ?? '');
    });
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.write(large);
    return new Promise<{ status?: string; details: string }>((resolve) => {
      stream.on('close', () => resolve({ status: status(), details: decodeURIComponent(details) }));
      // A hang detector (before, the call stayed open for as long as its connection).
      setTimeout(() => resolve({ status: 'still open', details: '' }), 15_000);
    });
  });
  const ends = await Promise.all(calls);
  for (const end of ends) {
    expect(end.status).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect(end.details).toMatch(/did not end its side/);
  }
  // The budget is free again: an honest call is answered.
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const answer = await unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', 64));
  client.close();
  session.destroy();
  expect(answer.status).toBe('OK');
}, 30_000);

it('keeps honest calls answered while a client reopens requests that never half-close as they are answered', async () => {
  // 2 connections × 16 streams of 1 MB, each sent whole and never half-closed, each reopened once answered,
  // from another process; an honest 64-image call every 300 ms meanwhile. Counted among requests decoded as
  // they came, they held that whole budget for as long as they went on: 5 honest calls in 6 RESOURCE_EXHAUSTED.
  // The largest request the 1 MiB message limit takes (334 images): 16 of them and one honest call fill the budget.
  const flood = streamsClient(frame(inferRequestBytes('tiny', 334)), 2, 'ModelInfer', 'reopen');
  await new Promise((resolve) => flood.stdout.once('data', resolve));
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const statuses: string[] = [];
  try {
    // Over 4.5 s: the first reopened calls come back from 3 s on.
    for (let i = 0; i < 15; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      statuses.push((await unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', 64))).status);
    }
  } finally {
    client.close();
    flood.kill();
  }
  expect(statuses).toEqual(new Array(15).fill('OK'));
}, 60_000);

it('holds no second copy of requests that came whole and wait for their half-close', async () => {
  // 8 connections × 16 streams of 1 MB, each sent whole, never half-closed, from another process (in this
  // one, the client's own buffers would count). Sampled with a full GC each time, from the first byte to
  // the flood's end.
  const gc = exposedGc();
  gc();
  const before = process.memoryUsage().arrayBuffers;
  let most = 0;
  const flood = streamsClient(large, 8, 'ModelInfer', 'once');
  let ended = 0;
  flood.stdout.on('data', (chunk: Buffer) => {
    ended += (chunk.toString().match(/ended/g) ?? []).length;
  });
  const done = new Promise((resolve) => flood.once('exit', resolve));
  let sampling = true;
  void done.then(() => {
    sampling = false;
  });
  while (sampling) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    gc();
    most = Math.max(most, process.memoryUsage().arrayBuffers - before);
  }
  // Each ended: answered, or cut while it held room others waited for.
  expect(ended).toBe(128);
  // The budgets allow 16 MiB decoded + 32 MiB arriving + each stream's free 16 KiB and each connection's one
  // message past its share (~59 MiB); measured 44–61 MiB, and 136 MiB before the chunks were let go.
  expect(most).toBeLessThan(80 * MiB);
}, 60_000);

it('answers a client whose half-close comes in a frame of its own, call by call, on one connection', async () => {
  // Some clients and proxies send END_STREAM in an empty frame of its own, after the message. When calls were
  // run before their half-close (0d374d5, reverted), one answered and reset before that frame came brought
  // Node's session down (-505, GOAWAY: every call on the connection lost; an outside re-check against a
  // server process, the proxy and client in two others: 5 runs in 6). All in one process, that race did not
  // show: this checks such a client is answered in full, call by call.
  const proxy = await splitEndStreamProxy(server.grpcPort as number);
  const client = new grpc.Client(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure());
  try {
    // 64 valid calls and 45 the model refuses (100 images, past its 64), all at once.
    const sizes = [...Array.from({ length: 64 }, (_, i) => i + 1), ...new Array(45).fill(100)];
    const answers = await Promise.all(
      sizes.map((images) => unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', images))),
    );
    expect(answers.map(({ status }) => status)).toEqual(sizes.map((n) => (n > 64 ? 'INVALID_ARGUMENT' : 'OK')));
  } finally {
    client.close();
    proxy.server.close();
  }
}, 60_000);

it('keeps no request of a ModelStreamInfer whose answer waits for a client that never reads', async () => {
  // 4 connections × 16 streams, each sending one 1 MB request and never taking a byte of the answer (the
  // client's stream windows are 0); sampled with a full GC once every answer has begun (its headers came).
  const gc = exposedGc();
  gc();
  const before = process.memoryUsage().arrayBuffers;
  const flood = streamsClient(large, 4, 'ModelStreamInfer', 'unread');
  const answering = await new Promise<number>((resolve) => {
    let seen = 0;
    flood.stdout.on('data', (chunk: Buffer) => {
      seen += (chunk.toString().match(/answering/g) ?? []).length;
      if (seen === 64) resolve(seen);
    });
    flood.once('exit', () => resolve(seen));
  });
  // The least held over 2 s, a full GC before each look: what the requests kept stays the whole time, while
  // what else this process does comes and goes (one look, taken once, saw 28 MB in a loaded suite).
  let held = Number.POSITIVE_INFINITY;
  for (let look = 0; look < 8; look++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    gc();
    held = Math.min(held, process.memoryUsage().arrayBuffers - before);
  }
  flood.kill();
  expect(answering).toBe(64);
  // Measured: under 1 MiB (the answers are small), and 60 MiB before (every request).
  expect(held).toBeLessThan(20 * MiB);
}, 60_000);

/** Node's full GC, for measuring what is live (vitest's workers run without --expose-gc). */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * A client in a process of its own: reads a framed request from stdin and sends it whole, never half-closed,
 * on 16 streams of each of `connections` connections, calling `method`. `mode`: 'once' exits when every
 * stream has ended; 'reopen' opens a stream again as each ends; 'unread' takes no byte of any answer (its
 * stream windows are 0). Prints 'flooding' once all are open, 'answering' as an answer begins and 'ended' as a
 * stream closes.
 */
const STREAMS_CLIENT = `
const http2 = require('node:http2');
const [port, connections, method, mode] = process.argv.slice(1);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c)).on('end', () => {
  const message = Buffer.concat(chunks);
  let open = 0;
  for (let c = 0; c < Number(connections); c++) {
    const session = http2.connect('http://127.0.0.1:' + port, mode === 'unread' ? { settings: { initialWindowSize: 0 } } : {});
    session.on('error', () => {});
    const start = () => {
      if (session.closed || session.destroyed) return;
      const stream = session.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/' + method, 'content-type': 'application/grpc', te: 'trailers' });
      open++;
      stream.on('error', () => {});
      if (mode !== 'unread') stream.on('data', () => {});
      stream.on('response', () => console.log('answering'));
      stream.on('close', () => {
        console.log('ended');
        if (mode === 'reopen') setImmediate(start);
        else if (--open === 0) process.exit(0);
      });
      stream.write(message);
    };
    for (let i = 0; i < 16; i++) start();
  }
  console.log('flooding');
  setTimeout(() => process.exit(1), 30000);
});
`;

/** STREAMS_CLIENT against the test's server, `message` on its stdin. */
function streamsClient(message: Buffer, connections: number, method: string, mode: 'once' | 'reopen' | 'unread') {
  const client = spawn(
    process.execPath,
    ['-e', STREAMS_CLIENT, String(server.grpcPort), String(connections), method, mode],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  client.stdin.end(message);
  return client;
}
