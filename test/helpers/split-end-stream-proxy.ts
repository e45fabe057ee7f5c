/**
 * A TCP proxy in front of an HTTP/2 server that moves each END_STREAM flag of the client's DATA frames into
 * an empty DATA frame of its own, sent `delayMs` later: the half-close as some clients and proxies send it,
 * after the message rather than on its last frame (grpc-js and grpcio put it on the last frame).
 */
import { type AddressInfo, connect, createServer, type Server } from 'node:net';

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const DATA = 0;
const END_STREAM = 1;

export async function splitEndStreamProxy(targetPort: number, delayMs = 0): Promise<{ port: number; server: Server }> {
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    let pending = Buffer.alloc(0);
    let prefaceSeen = false;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!prefaceSeen) {
        if (pending.length < PREFACE_BYTES) return;
        upstream.write(pending.subarray(0, PREFACE_BYTES));
        pending = pending.subarray(PREFACE_BYTES);
        prefaceSeen = true;
      }
      while (pending.length >= FRAME_HEADER_BYTES) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < FRAME_HEADER_BYTES + length) break;
        const frame = Buffer.from(pending.subarray(0, FRAME_HEADER_BYTES + length));
        pending = pending.subarray(FRAME_HEADER_BYTES + length);
        const flags = frame[4] ?? 0;
        if (frame[3] !== DATA || !(flags & END_STREAM)) {
          upstream.write(frame);
          continue;
        }
        if (length > 0) {
          frame[4] = flags & ~END_STREAM;
          upstream.write(frame);
        }
        const end = Buffer.alloc(FRAME_HEADER_BYTES);
        end[3] = DATA;
        end[4] = END_STREAM;
        frame.copy(end, 5, 5, 9); // the stream id
        setTimeout(() => upstream.destroyed || upstream.write(end), delayMs);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) socket.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}
