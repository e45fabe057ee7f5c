/**
 * A gzip or deflate gRPC message decompressed within room taken as it grows, chunk by chunk (`take`), and at
 * most `limit` bytes: a 3 KB request takes 3 KB of the arriving budget, where room for the whole message
 * limit was taken before it began (16 concurrent one-image gzip calls on one connection: 8 refused), and a
 * bomb stops at the first chunk past its room or the limit. Failures are gRPC statuses, the client's own
 * (a body that is not what its encoding says: INVALID_ARGUMENT, not grpc-js's INTERNAL).
 */
import { createGunzip, createInflate } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';

export const DECOMPRESSING_REFUSED = 'the server is decompressing as many messages as it takes at once; retry shortly';

export function decompressWithin(
  body: Buffer,
  encoding: 'gzip' | 'deflate',
  limit: number,
  take: (bytes: number) => boolean,
): Promise<Buffer> {
  const inflater =
    encoding === 'gzip' ? createGunzip({ chunkSize: 64 * 1024 }) : createInflate({ chunkSize: 64 * 1024 });
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let failed = false;
    const fail = (status: Partial<grpc.StatusObject>) => {
      if (failed) return;
      failed = true;
      inflater.destroy();
      reject(status);
    };
    inflater.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit)
        return fail({
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `the message decompresses to more than ${limit} bytes, the limit`,
        });
      if (!take(chunk.length)) return fail({ code: grpc.status.RESOURCE_EXHAUSTED, details: DECOMPRESSING_REFUSED });
      parts.push(chunk);
    });
    inflater.on('error', () =>
      fail({ code: grpc.status.INVALID_ARGUMENT, details: `the message is not valid ${encoding}` }),
    );
    inflater.on('end', () => failed || resolve(Buffer.concat(parts, total)));
    inflater.end(body);
  });
}
