/**
 * gRPC calls that never finish, and the requests they held. A unary call whose request came whole and whose
 * client never ended its side (half-closed) was never run: it stayed open for as long as the connection did,
 * its decoded request in the budget for requests decoded — 16 such calls of 1 MB held all of it, and every
 * other client's ModelInfer was RESOURCE_EXHAUSTED for good. Now it runs once its request is whole, as
 * Triton's C++ server runs it. And a ModelStreamInfer whose client never reads: its answer waits to leave,
 * and it kept the request it answered (2,048 streams: +1.4 GB, after the budget had counted it returned),
 * as grpc-js's decoder kept the chunks it read that request from.
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

const MiB = 1024 * 1024;
let server: RunningServer;
/** A valid request of ~1 MB, framed (318 images: decoded, then refused by the model's batch limit once run). */
let largeRequest: Buffer;

beforeAll(async () => {
  server = await startServer({ models: makeTinyRepository(), port: 0, grpcPort: 0 });
  largeRequest = frame(inferRequestBytes('tiny', 318));
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** Sends `message` on a ModelInfer stream of `session` and never half-closes it: its status and details. */
function withoutHalfClose(session: http2.ClientHttp2Session, message: Buffer) {
  const { stream, status } = grpcStream(session, 'ModelInfer');
  let details = '';
  let bytes = 0;
  const read = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-message'] !== undefined) details = decodeURIComponent(String(h['grpc-message']));
  };
  stream.on('response', read).on('trailers', read);
  stream.on('error', () => {});
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  stream.write(message);
  return new Promise<{ status?: string; details: string; bytes: number }>((resolve) => {
    stream.on('close', () => resolve({ status: status(), details, bytes }));
    // A hang detector (before, the call stayed open for as long as its connection).
    setTimeout(() => resolve({ status: 'still open', details: '', bytes }), 15_000);
  });
}

it('runs a unary request once it is whole, whether or not its client half-closes the call', async () => {
  const session = http2.connect(`http://127.0.0.1:${server.grpcPort}`);
  session.on('error', () => {});
  // 16 of 1 MB fill the budget for decoded requests (16 × the 1 MiB message limit); 4 honest-sized ones.
  const large = await Promise.all(Array.from({ length: 16 }, () => withoutHalfClose(session, largeRequest)));
  const valid = await Promise.all(
    Array.from({ length: 4 }, () => withoutHalfClose(session, frame(inferRequestBytes('tiny', 64)))),
  );
  for (const end of large) {
    expect(end.status).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect(end.details).toMatch(/at most 64 images/); // the model's own answer: the request was run
  }
  for (const end of valid) expect(end).toMatchObject({ status: '0' });
  for (const end of valid) expect(end.bytes).toBeGreaterThan(64 * 10 * 4); // 64 images × 10 scores
  // Nothing holds the budget: a client that half-closes is answered.
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const answer = await unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', 64));
  client.close();
  session.destroy();
  expect(answer.status).toBe('OK');
}, 30_000);

it('keeps no request of a ModelStreamInfer whose answer waits for a client that never reads', async () => {
  // 4 connections × 16 streams, each sending one 1 MB request and never taking a byte of the answer (the
  // client's stream windows are 0); sampled with a full GC once every answer has begun (its headers came).
  const gc = exposedGc();
  gc();
  const before = process.memoryUsage().arrayBuffers;
  const flood = spawn(process.execPath, ['-e', NEVER_READING, String(server.grpcPort)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  flood.stdin.end(largeRequest);
  const answering = await new Promise<number>((resolve) => {
    let seen = 0;
    flood.stdout.on('data', (chunk: Buffer) => {
      seen += (chunk.toString().match(/answering/g) ?? []).length;
      if (seen === 64) resolve(seen);
    });
    flood.once('exit', () => resolve(seen));
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc();
  const held = process.memoryUsage().arrayBuffers - before;
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

/** A client that sends the request from stdin on 64 ModelStreamInfer streams and reads no answer. */
const NEVER_READING = `
const http2 = require('node:http2');
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c)).on('end', () => {
  const message = Buffer.concat(chunks);
  for (let c = 0; c < 4; c++) {
    const session = http2.connect('http://127.0.0.1:' + process.argv[1], { settings: { initialWindowSize: 0 } });
    session.on('error', () => {});
    for (let i = 0; i < 16; i++) {
      const stream = session.request({ ':method': 'POST', ':path': '/inference.GRPCInferenceService/ModelStreamInfer', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      stream.on('response', () => console.log('answering'));
      stream.write(message);
    }
  }
  setTimeout(() => process.exit(1), 30000);
});
`;
