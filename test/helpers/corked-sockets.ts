/**
 * Real TCP sockets that hold bytes written and not sent, as a client that never reads leaves them: corked,
 * to a local peer that reads everything it gets (so nothing but the cork holds them).
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface CorkedSockets {
  /** A connected socket holding `bytes` unsent. */
  holding(bytes: number): Promise<Socket>;
  /** Destroys every socket made and stops the peer. */
  close(): Promise<void>;
}

export async function corkedSockets(): Promise<CorkedSockets> {
  const peer: Server = createServer((s) => s.resume());
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  const sockets: Socket[] = [];
  return {
    async holding(bytes) {
      const socket = connect((peer.address() as AddressInfo).port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.cork();
      if (bytes > 0) socket.write(Buffer.alloc(bytes));
      sockets.push(socket);
      return socket;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => peer.close(resolve));
    },
  };
}
