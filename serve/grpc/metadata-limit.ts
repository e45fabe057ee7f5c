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
import { constants, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

export const MAX_METADATA_BYTES = 16 * 1024;

/** Bytes of a flat [name, value, name, value, …] list as HTTP/2 counts them: 32 octets a pair besides. */
const listBytes = (raw: readonly string[] = []) => raw.reduce((sum, part) => sum + part.length + 16, 0);

/** Headers as a flat [name, value, name, value, …] list, each of a name's values a pair. */
type HeaderValues = Record<string, string | string[] | number | undefined>;
const flatten = (headers: HeaderValues) =>
  Object.entries(headers).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value ?? '']).flatMap((one) => [name, String(one)]),
  );

/** The bytes `metadata` takes as HTTP/2 counts a header list: name, value and 32 octets each (RFC 9113 §6.5.2). */
const metadataBytes = (metadata: grpc.Metadata) => listBytes(flatten(metadata.toHttp2Headers() as HeaderValues));

/** Each call's header list as it came, in bytes (`measureHeaderLists`). */
const headerListBytes = new WeakMap<ServerHttp2Stream, number>();

/**
 * Measures the header list of every stream `servers` begin, before grpc-js reads it, and resets one whose
 * trailers pass the limit (ENHANCE_YOUR_CALM, as Node resets a header list past it): gRPC clients send none,
 * and 60 KB of them were taken before the settings acknowledgement (a re-check).
 */
export function measureHeaderLists(servers: Iterable<Http2Server>): void {
  for (const server of servers)
    server.prependListener('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: unknown, raw: string[]) => {
      headerListBytes.set(stream, listBytes(raw));
      stream.once('trailers', (trailers: HeaderValues) => {
        if (listBytes(flatten(trailers)) > MAX_METADATA_BYTES) stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      });
    });
}

/** The larger of the call's header list as it came (when measured) and its Metadata's size. */
export function callMetadataBytes(stream: ServerHttp2Stream | undefined, metadata: grpc.Metadata): number {
  return Math.max((stream && headerListBytes.get(stream)) ?? 0, metadataBytes(metadata));
}

export const METADATA_REFUSED = `the call's metadata is past ${MAX_METADATA_BYTES} bytes, the limit`;
