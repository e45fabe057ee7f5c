/**
 * A stopping server and gRPC calls whose messages began and went quiet. Each such call held the stop for the
 * whole exit timeout: a message begun and silent, and one begun after a whole first (the cut looked only at
 * calls with no message in, a re-attack: 60 s). Now each is cut once quiet for 3 s while the server reads
 * it; a stream waiting for room is not judged while it waits (its silence may be the server's) and has its
 * 3 s from when room came, so silent ones queued for room are cut in turns. Honest calls waiting for room,
 * more than a connection's share at once, are answered.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { startServer } from '../serve/server.ts';
import { frame, grpcStream, inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';

const MiB = 1024 * 1024;

it('cuts silent half-sent calls once quiet 3 s, in turns as room comes, and answers honest calls waiting for room', async () => {
  const server = await startServer({
    models: makeTinyRepository(),
    port: 0,
    grpcPort: 0,
    exitTimeoutMs: 60_000,
    // Two announced messages a connection at a time: the rest of its silent ones wait for room.
    arrivingGrpcBytes: { freeBytes: 16 * 1024, total: 8 * MiB, perClient: 2 * MiB, slowWindowMs: 60_000 },
  });
  const sessions = Array.from({ length: 3 }, () => http2.connect(`http://127.0.0.1:${server.grpcPort}`));
  const ends: Promise<number>[] = [];
  const endsAfterWhole: Promise<number>[] = [];
  const silent = (session: http2.ClientHttp2Session, bytes: Buffer, into = ends) => {
    const { stream } = grpcStream(session, 'ModelInfer');
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.write(bytes);
    into.push(new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1))));
  };
  const announcing1MiB = Buffer.from([0, 0x00, 0x10, 0x00, 0x00]);
  for (const session of sessions) {
    session.on('error', () => {});
    for (let i = 0; i < 3; i++) silent(session, announcing1MiB);
    // A whole first message, no half-close, then a second one begun.
    silent(
      session,
      Buffer.concat([frame(inferRequestBytes('tiny', 1)), announcing1MiB, Buffer.alloc(100)]),
      endsAfterWhole,
    );
  }
  // Honest: 16 calls of 200 KB (64 images, the model's most) on one connection, 3.2 MB against its 2 MiB.
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  const honest = Array.from({ length: 16 }, () => unaryCall(client, 'ModelInfer', inferRequestBytes('tiny', 64)));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // A hang detector, not a timing: the exit timeout is 60 s; before, these calls held it to the end.
  const closed = await Promise.race([
    server.close().then(() => 'closed'),
    new Promise((resolve) => setTimeout(() => resolve('held'), 30_000)),
  ]);
  const codes = await Promise.all(ends);
  const codesAfterWhole = await Promise.all(endsAfterWhole);
  const answers = await Promise.all(honest);
  client.close();
  for (const session of sessions) session.destroy();
  expect(closed).toBe('closed');
  expect(answers.map(({ status, details }) => ({ status, details }))).toEqual(
    Array.from({ length: 16 }, () => ({ status: 'OK', details: undefined })),
  );
  expect(new Set(codes)).toEqual(new Set([http2.constants.NGHTTP2_CANCEL]));
  // Cut as stalled, or first answered INVALID_ARGUMENT for its missing half-close (then reset NO_ERROR): 3 s each.
  for (const code of codesAfterWhole)
    expect([http2.constants.NGHTTP2_CANCEL, http2.constants.NGHTTP2_NO_ERROR]).toContain(code);
}, 90_000);
