/**
 * gRPC with the message limit raised past a connection's share of the arriving budget (--max-body-bytes
 * 4 MiB here, 1 MiB a connection): a request that fits the limit is answered whatever its form — gzip,
 * fp32_contents — and one refused unread still names its id on ModelStreamInfer (an outside attack found a
 * gzip message past the share refused "retry shortly" for ever, fp32_contents held to 1 MiB of floats, and
 * refused stream answers with an empty id).
 */
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { grpcProtoRoot } from '../serve/grpc/proto.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { inferRequestBytes, unaryCall } from './helpers/grpc-requests.ts';
import { makeTinyRepository } from './helpers/model-repo.ts';

const MiB = 1024 * 1024;
const Request = grpcProtoRoot().lookupType('inference.ModelInferRequest');
const Response = grpcProtoRoot().lookupType('inference.ModelInferResponse');
const StreamAnswer = grpcProtoRoot().lookupType('inference.ModelStreamInferResponse');
let server: RunningServer;
let client: grpc.Client;

beforeAll(async () => {
  server = await startServer({
    models: makeTinyRepository(),
    port: 0,
    grpcPort: 0,
    maxBodyBytes: 4 * MiB,
    maxBatch: 512,
    arrivingGrpcBytes: { freeBytes: 16 * 1024, total: 2 * MiB, perClient: 1 * MiB, slowWindowMs: 1000 },
  });
  client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
}, 60_000);
afterAll(async () => {
  client?.close();
  await server?.close();
});

/** Rows of logits in a ModelInferResponse. */
const rowsOf = (answer: Buffer | undefined) => {
  const response = Response.toObject(Response.decode(answer ?? Buffer.alloc(0))) as { outputs: { shape: number[] }[] };
  return Number(response.outputs[0]?.shape[0]);
};

it('answers a gzip request that decompresses past a connection’s share of the budget, within the message limit', async () => {
  // 400 images: 1.25 MB decompressed, past the 1 MiB share, within the 4 MiB limit (the same request
  // uncompressed was answered; compressed it was refused RESOURCE_EXHAUSTED "retry shortly", every time).
  const gzipped = gzipSync(inferRequestBytes('tiny', 400));
  const gzipClient = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip,
  });
  try {
    const { status, details, answer } = await unaryCall(gzipClient, 'ModelInfer', inferRequestBytes('tiny', 400));
    expect(`${status} ${details ?? ''}`.trim()).toBe('OK');
    expect(rowsOf(answer)).toBe(400);
    expect(gzipped.length).toBeLessThan(64 * 1024); // it did travel compressed: zeros
  } finally {
    gzipClient.close();
  }
}, 60_000);

it('answers 400 images as fp32_contents as it does as raw_input_contents (they were held to 1 MiB of floats)', async () => {
  const request = Request.encode(
    Request.fromObject({
      model_name: 'tiny',
      inputs: [
        {
          name: 'input',
          datatype: 'FP32',
          shape: [400, 1, 28, 28],
          contents: { fp32_contents: new Array(400 * 784).fill(0) },
        },
      ],
    }),
  ).finish();
  const { status, details, answer } = await unaryCall(client, 'ModelInfer', Buffer.from(request));
  expect(`${status} ${details ?? ''}`.trim()).toBe('OK');
  expect(rowsOf(answer)).toBe(400);
}, 60_000);

it('names the id of a ModelStreamInfer request refused before it is decoded', async () => {
  // 1.1 M values as 1-byte varints: refused from its wire bytes, never decoded — at 262,144, whatever the limit
  // (only packed floats get the limit's worth: 16 M unpacked ints held the loop 0.9 s, a re-attack).
  const request = Request.encode(
    Request.fromObject({
      model_name: 'tiny',
      id: 'too-many-values',
      inputs: [
        {
          name: 'input',
          datatype: 'INT32',
          shape: [1, 1, 28, 28],
          contents: { int_contents: new Array(1_100_000).fill(1) },
        },
      ],
    }),
  ).finish();
  const answers: { error_message: string; infer_response?: { id: string } }[] = [];
  const call = client.makeBidiStreamRequest(
    '/inference.GRPCInferenceService/ModelStreamInfer',
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
  const ended = new Promise<void>((resolve) => {
    call.on('data', (b: Buffer) => answers.push(StreamAnswer.toObject(StreamAnswer.decode(b)) as (typeof answers)[0]));
    call.on('error', () => resolve());
    call.on('end', () => resolve());
  });
  call.write(Buffer.from(request));
  call.end();
  await ended;
  expect(answers).toHaveLength(1);
  expect(answers[0]?.error_message).toMatch(/more than 262144 tensor values/);
  expect(answers[0]?.infer_response?.id).toBe('too-many-values');
}, 60_000);
