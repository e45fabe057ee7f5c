/**
 * A call's metadata is held to 16 KiB, as HTTP/1.1's headers are (Node's maxHeaderSize) and gRPC's C core
 * holds it (Triton's server): Node's HTTP/2 default, 64 KiB a stream, let 128 connections × 16 streams of
 * 56 KB metadata take +260 MiB outside every budget (an outside attack). The limit is advertised in the
 * server's HTTP/2 settings, but Node applies it only to streams begun after the client has acknowledged
 * them: a client's first calls on a new connection, sent before the server's settings arrived, carried 17–60
 * KB (a re-attack with Node's own HTTP/2 client). So each call's header list is also measured here, as it
 * came: grpc-js's Metadata leaves out the headers it reads itself (content-type, grpc-timeout, the accepted
 * encodings) and the entries it drops (a key it refuses, a value it cannot take), and 40 KB in any of them
 * got past a count of the Metadata (a re-check).
 */
import type { Http2Server, ServerHttp2Stream } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

export const MAX_METADATA_BYTES = 16 * 1024;

/** The bytes `metadata` takes as HTTP/2 counts a header list: name, value and 32 octets each (RFC 9113 §6.5.2). */
export function metadataBytes(metadata: grpc.Metadata): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(metadata.toHttp2Headers())) {
    const values = Array.isArray(value) ? value : [value];
    for (const one of values) bytes += name.length + String(one ?? '').length + 32;
  }
  return bytes;
}

/** Each call's header list as it came, in bytes (`measureHeaderLists`). */
const headerListBytes = new WeakMap<ServerHttp2Stream, number>();

/** Measures the header list of every stream `servers` begin, before grpc-js reads it. */
export function measureHeaderLists(servers: Iterable<Http2Server>): void {
  for (const server of servers)
    server.prependListener('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: unknown, raw: string[]) => {
      let bytes = 0;
      for (const part of raw ?? []) bytes += part.length;
      headerListBytes.set(stream, bytes + 16 * (raw?.length ?? 0)); // 32 octets a name-value pair
    });
}

/** The larger of the call's header list as it came (when measured) and its Metadata's size. */
export function callMetadataBytes(stream: ServerHttp2Stream | undefined, metadata: grpc.Metadata): number {
  return Math.max((stream && headerListBytes.get(stream)) ?? 0, metadataBytes(metadata));
}

export const METADATA_REFUSED = `the call's metadata is past ${MAX_METADATA_BYTES} bytes, the limit`;
