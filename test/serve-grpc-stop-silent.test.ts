/**
 * A stopping server and gRPC calls whose messages began and went quiet. Each such call held the stop for the
 * whole exit timeout: one with a second message begun after a whole first (the cut looked only at calls with
 * no message in), and streams waiting for room that announced 1 MiB in a 5-byte prefix and sent nothing more —
 * counted as held back by the server, they were cut in turns as room came, 32 every 3 s (a re-attack: 640 of
 * them held a stop 50 s). A stream waiting for room is held back only once HTTP/2 flow control has stopped
 * its client; one that could send and does not is silent by its own choice, and is cut; an honest call
 * waiting for room behind them is answered.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { startServer } from '../serve/server.ts';
import { frame, grpcStream, inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';

const MiB = 1024 * 1024;

it('cuts silent half-sent calls at once their quiet is 3 s, and answers an honest call that waited for room behind them', async () => {
  const server = await startServer({
    models: makeTinyRepository(),
    port: 0,
    grpcPort: 0,
    exitTimeoutMs: 60_000,
    // Room for two announced messages at a time: the rest of the silent ones wait for it.
    arrivingGrpcBytes: { freeBytes: 16 * 1024, total: 2 * MiB, perClient: 1 * MiB, slowWindowMs: 60_000 },
  });
  const sessions = Array.from({ length: 4 }, () => http2.connect(`http://127.0.0.1:${server.grpcPort}`));
  const ends: Promise<number>[] = [];
  const silent = (session: http2.ClientHttp2Session, bytes: Buffer) => {
    const { stream } = grpcStream(session, 'ModelInfer');
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.write(bytes);
    ends.push(new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1))));
  };
  const announcing1MiB = Buffer.from([0, 0x00, 0x10, 0x00, 0x00]);
  for (const session of sessions) {
    session.on('error', () => {});
    for (let i = 0; i < 15; i++) silent(session, announcing1MiB);
    // A whole first message, no half-close, then a second one begun.
    silent(session, Buffer.concat([frame(inferRequestBytes('tiny', 1)), announcing1MiB, Buffer.alloc(100)]));
  }
  // The honest call: 200 KB (64 images, the model's most), sent whole as fast as flow control lets it, behind
  // the silent ones.
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const honest = unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', 64));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stopping = performance.now();
  // A hang detector, not a timing: the exit timeout is 60 s; before, these calls held it to the end.
  const closed = await Promise.race([
    server.close().then(() => 'closed'),
    new Promise((resolve) => setTimeout(() => resolve('held'), 30_000)),
  ]);
  const seconds = (performance.now() - stopping) / 1000;
  const codes = await Promise.all(ends);
  client.close();
  for (const session of sessions) session.destroy();
  expect([closed, seconds < 30]).toEqual(['closed', true]);
  const { status, details } = await honest;
  expect({ status, details }).toEqual({ status: 'OK', details: undefined });
  expect(new Set(codes)).toEqual(new Set([http2.constants.NGHTTP2_CANCEL]));
}, 90_000);
