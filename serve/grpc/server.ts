/**
 * The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`, grpc_predict_v2.proto) on
 * its own port: health, metadata and ModelInfer, through the same checks, batcher, statistics and
 * limits as the HTTP route (v2-infer.ts). Inputs come as `raw_input_contents` (Triton's clients) or
 * `contents.fp32_contents`; outputs go back as `raw_output_contents`, as Triton answers.
 */

import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { shownName } from '../../node/repository.ts';
import type { ValueDescription } from '../../onnx/describe.ts';
import { BatchShapeError } from '../batcher.ts';
import { encodeFp32 } from '../binary-tensors.ts';
import { zodMessage } from '../body.ts';
import { guardConnections } from '../connections.ts';
import { HttpError, publicMessage } from '../errors.ts';
import { assertFiniteOutputs, NonFiniteOutputError } from '../inference.ts';
import { ModelNotFoundError, type ModelRepository } from '../repository.ts';
import { parseVersion } from '../routes/lookup.ts';
import { modelMetadata, V2_EXTENSIONS } from '../routes/v2.ts';
import { ModelFailedError } from '../runner/model-runner.ts';
import { InferRequestSchema } from '../schemas.ts';
import { DATATYPES, inputTensor, outputShape, requestedOutputs } from '../v2-infer.ts';

const PROTO = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));

export interface GrpcOptions {
  repository: ModelRepository;
  host: string;
  port: number;
  /** The largest message taken (the HTTP body limit). */
  maxMessageBytes: number;
  serverName: string;
  serverVersion: string;
}

export interface RunningGrpc {
  port: number;
  close(): Promise<void>;
}

interface InferTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: { fp32_contents?: number[] } | null;
}
interface InferRequestMessage {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferTensor[];
  outputs: { name: string }[];
  raw_input_contents: Buffer[];
}

const HTTP_TO_GRPC: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  413: grpc.status.RESOURCE_EXHAUSTED,
};

/** Any failure as a gRPC status with our message (never a stack trace or a path). */
function grpcError(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof HttpError)
    return { code: HTTP_TO_GRPC[error.status] ?? grpc.status.INVALID_ARGUMENT, details: error.message };
  if (error instanceof ModelNotFoundError) return { code: grpc.status.NOT_FOUND, details: error.message.slice(0, 300) };
  if (error instanceof NonFiniteOutputError) return { code: grpc.status.FAILED_PRECONDITION, details: error.message };
  if (error instanceof ModelFailedError || error instanceof BatchShapeError)
    return { code: grpc.status.UNAVAILABLE, details: publicMessage(error.message) };
  return { code: grpc.status.INTERNAL, details: 'internal server error' };
}

/** A unary handler from an async function; errors become statuses. */
const unary =
  <Req, Res>(work: (request: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> =>
  (call, callback) => {
    Promise.resolve()
      .then(() => work(call.request))
      .then(
        (response) => callback(null, response),
        (error) => callback(grpcError(error)),
      );
  };

const versionOf = (raw: string) => parseVersion(raw === '' ? undefined : raw);

/** gRPC clients keep a few long-lived connections (HTTP/2 multiplexes calls): far fewer than HTTP's. */
const GRPC_CONNECTIONS = { total: 128, perClient: 32, pipelined: 16 };

export async function startGrpc(options: GrpcOptions): Promise<RunningGrpc> {
  const { repository } = options;
  const definition = grpc.loadPackageDefinition(
    loadSync(PROTO, { keepCase: true, longs: Number, defaults: true, oneofs: true }),
  ) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    // grpc-js lifts Node's HTTP/2 session memory limit by default: unfinished messages then grow without
    // bound. A session holds at most two messages' worth (MB), on at most 16 streams at once.
    'grpc-node.max_session_memory': Math.max(4, Math.ceil((2 * options.maxMessageBytes) / 2 ** 20) + 1),
    'grpc.max_concurrent_streams': 16,
  });
  server.addService(definition.inference.GRPCInferenceService.service, {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: repository.readyCount > 0 })),
    ServerMetadata: unary(() => ({
      name: options.serverName,
      version: options.serverVersion,
      extensions: V2_EXTENSIONS,
    })),
    ModelReady: unary((r: { name: string; version: string }) => {
      const version = versionOf(r.version);
      const versions = repository.versions(r.name);
      if (versions.length === 0) throw new ModelNotFoundError(`unknown model '${shownName(r.name)}'`);
      return { ready: versions.some((v) => v.ready && (version === undefined || v.version === version)) };
    }),
    ModelMetadata: unary((r: { name: string; version: string }) =>
      repository.use(r.name, versionOf(r.version), async (model) => modelMetadata(model)),
    ),
    ModelInfer: unary((r: InferRequestMessage) => infer(repository, r)),
  });
  // grpc-js listens on loopback only; clients reach it through a front that holds connections to the
  // same rules as HTTP's (connections.ts): a cap in all and per address, the least recently active closed
  // for room. grpc-js itself has no connection cap: 20,000 silent sockets used up the process's files.
  const inner = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const open = new Set<Socket>();
  const front = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    const upstream = connect({ host: '127.0.0.1', port: inner });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  guardConnections(front, GRPC_CONNECTIONS);
  const port = await new Promise<number>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port, options.host, () => resolve((front.address() as AddressInfo).port));
  });
  return {
    port,
    close: async () => {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        for (const socket of open) socket.destroy();
      });
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** ModelInfer: the message as the HTTP route's request, the same checks, raw outputs. */
function infer(repository: ModelRepository, r: InferRequestMessage) {
  const raw = r.raw_input_contents;
  if (raw.length > 0 && raw.length !== r.inputs.length)
    throw new HttpError(400, 'invalid_inputs', `${raw.length} raw_input_contents for ${r.inputs.length} inputs`);
  const parsed = InferRequestSchema.safeParse({
    ...(r.id ? { id: r.id } : {}),
    inputs: r.inputs.map((t) => {
      const data = t.contents?.fp32_contents ?? [];
      return { name: t.name, datatype: t.datatype, shape: t.shape, ...(raw.length === 0 ? { data } : {}) };
    }),
    ...(r.outputs.length > 0 ? { outputs: r.outputs.map((o) => ({ name: o.name })) } : {}),
  });
  if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
  const request = { body: parsed.data, binary: raw.length > 0 ? raw.map((b) => new Uint8Array(b)) : [] };
  return repository.use(r.model_name, versionOf(r.model_version), (model) =>
    model.stats.request(async () => {
      const { count, data } = inputTensor(model, request);
      const wanted = requestedOutputs(model, request.body);
      const { outputs, timings } = await model.batcher.inferTimed(data, count);
      assertFiniteOutputs(model, Object.fromEntries(wanted.map(({ name }) => [name, outputs[name] as Float32Array])));
      const tensors = wanted.map(({ name }) => {
        const o = model.signature.outputs.find((s) => s.name === name) as ValueDescription;
        const values = outputs[name] as Float32Array;
        return { name, datatype: DATATYPES[o.dataType] ?? o.dataType, shape: outputShape(o, values, count), values };
      });
      const value = {
        model_name: model.name,
        model_version: String(model.version),
        id: r.id,
        outputs: tensors.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        raw_output_contents: tensors.map((t) => Buffer.from(encodeFp32(t.values))),
      };
      return { value, count, timings };
    }),
  );
}
