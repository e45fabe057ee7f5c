/** gRPC calls as the tests make them (by grpc-js, or by hand on HTTP/2), ModelInfer requests, and a model whose answers are large. */
import { mkdirSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcProtoRoot } from '../../serve/grpc/proto.ts';
import { oddModel } from '../../testkit/odd-models.ts';

const Request = grpcProtoRoot().lookupType('inference.ModelInferRequest');

/** A ModelInferRequest (unframed) for `images` zero images of `model`, as raw_input_contents. */
export function inferRequestBytes(model: string, images: number): Buffer {
  return Buffer.from(
    Request.encode(
      Request.fromObject({
        model_name: model,
        inputs: [{ name: 'input', datatype: 'FP32', shape: [images, 1, 28, 28] }],
        raw_input_contents: [Buffer.alloc(images * 784 * 4)],
      }),
    ).finish(),
  );
}

/** Adds `wide` to the repository at `root`: 4,096 values an image, so a 64-image answer is 1 MiB of raw floats. */
export function addWideModel(root: string): void {
  mkdirSync(join(root, 'wide', '1'), { recursive: true });
  writeFileSync(join(root, 'wide', '1', 'model.onnx'), oddModel({ wideOutput: 4086 }));
}

/** A gRPC message framed on the wire: its compressed flag and big-endian length, then its bytes. */
export function frame(bytes: Buffer, compressed = false): Buffer {
  const header = [compressed ? 1 : 0, ...[24, 16, 8, 0].map((s) => (bytes.length >>> s) & 0xff)];
  return Buffer.concat([Buffer.from(header), bytes]);
}

/** The HTTP/2 stream of a call of `method` opened by hand on `session` (nothing sent on it yet). */
export function callStream(
  session: http2.ClientHttp2Session,
  method: string,
  headers: http2.OutgoingHttpHeaders = {},
): http2.ClientHttp2Stream {
  return session.request({
    ':method': 'POST',
    ':path': `/inference.GRPCInferenceService/${method}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
}

/** A call of `method` opened by hand on `session`, and its grpc-status once one has come (in headers or trailers). */
export function grpcStream(
  session: http2.ClientHttp2Session,
  method: string,
  headers: http2.OutgoingHttpHeaders = {},
): { stream: http2.ClientHttp2Stream; status: () => string | undefined } {
  const stream = callStream(session, method, headers);
  let status: string | undefined;
  const read = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
  };
  stream.on('response', read).on('trailers', read);
  return { stream, status: () => status };
}

/**
 * A call of `method` made by hand on an HTTP/2 session (a body of any frames), reset right after sending if
 * asked: its grpc-status ('none' when it has none).
 */
export function rawCall(
  session: http2.ClientHttp2Session,
  method: string,
  body: Buffer,
  headers: Record<string, string> = {},
  reset = false,
): Promise<string> {
  return new Promise<string>((resolve) => {
    const { stream, status } = grpcStream(session, method, headers);
    stream.on('data', () => {});
    stream.on('error', () => resolve(status() ?? 'none')).on('close', () => resolve(status() ?? 'none'));
    if (!reset) return stream.end(body);
    stream.write(body);
    setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
  });
}

/** A unary call of `method` by grpc-js with the message's bytes as they are: 'OK' or the status's name, and its answer or details. */
export function unaryCall(
  client: grpc.Client,
  method: string,
  bytes: Buffer,
  options: grpc.CallOptions = {},
  metadata = new grpc.Metadata(),
): Promise<{ status: string; details?: string; answer?: Buffer }> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      `/inference.GRPCInferenceService/${method}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      metadata,
      options,
      (error, answer?: Buffer) =>
        resolve(error ? { status: grpc.status[error.code], details: error.details } : { status: 'OK', answer }),
    ),
  );
}
