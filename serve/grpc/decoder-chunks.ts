/**
 * grpc-js's message decoder (one per call) keeps the chunks of the last message it read until the next one
 * begins, and its compressed flag as a slice of the chunk it came in: a call whose request has arrived whole
 * holds a second copy of it for as long as the call stays open. A unary call's client that never half-closes
 * keeps its call open for good: 512 such calls of 1 MB held +502 MiB after GC, outside every budget (an
 * outside attack: +2.1 GiB from 128 connections × 16 streams), though each request had been decoded, or
 * refused, and its room given back. Once a message is whole, what it was read from is let go here.
 */
import type * as grpc from '@grpc/grpc-js';

/** grpc-js's StreamDecoder (private): `readState` 0 is NO_DATA, between messages. */
interface StreamDecoder {
  write(data: Buffer): Buffer[];
  readState: number;
  readPartialMessage: Buffer[];
  readCompressFlag: Buffer;
}

const BETWEEN_MESSAGES = 0;

/** Make `call`'s decoder drop a message's chunks once it is whole (left alone should a version differ). */
export function forgetReadMessages(call: grpc.ServerInterceptingCallInterface): void {
  const decoder = (call as unknown as { decoder?: Partial<StreamDecoder> }).decoder;
  if (!isStreamDecoder(decoder)) return;
  const write = decoder.write.bind(decoder);
  decoder.write = (data: Buffer) => {
    const messages = write(data);
    if (messages.length > 0 && decoder.readState === BETWEEN_MESSAGES) decoder.readPartialMessage = [];
    // The flag's own byte, not a view that keeps a whole chunk (up to the stream's window) alive.
    const flag = decoder.readCompressFlag;
    if (flag.buffer.byteLength > 1) decoder.readCompressFlag = Buffer.alloc(1, flag[0] ?? 0);
    return messages;
  };
}

function isStreamDecoder(decoder: Partial<StreamDecoder> | undefined): decoder is StreamDecoder {
  return (
    typeof decoder?.write === 'function' &&
    typeof decoder.readState === 'number' &&
    Array.isArray(decoder.readPartialMessage) &&
    Buffer.isBuffer(decoder.readCompressFlag)
  );
}
