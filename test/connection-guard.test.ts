/**
 * The connection guard (serve/connections.ts) driven directly on a plain TCP server: at its cap it closes a
 * connection of the address holding the most, so a lone client is not the one to go when a flood's
 * connections all wait on the server.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { guardConnections, waitingOnServer } from '../serve/connections.ts';

it("at the cap, the busiest address gives up a connection, not a lone client's moving one", async () => {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    // The flood's bodies wait on the server (the body budget): their silence is the server's.
    if (socket.remoteAddress !== '127.0.0.30') waitingOnServer(socket, true);
  });
  const guard = guardConnections(server, { total: 10, perClient: 10, pipelined: 16 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const open = async (localAddress: string) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  };
  const sockets: Socket[] = [];
  try {
    const lone = await open('127.0.0.30');
    sockets.push(lone);
    for (let k = 0; k < 9; k++) sockets.push(await open(`127.0.0.${31 + (k % 3)}`));
    lone.write('x'); // the lone client is the most recently active, and the only one not waiting on us
    await new Promise((r) => setTimeout(r, 50));
    for (let k = 0; k < 3; k++) sockets.push(await open('127.0.0.34'));
    await new Promise((r) => setTimeout(r, 200));
    expect(guard.evicted).toBe(3);
    // Taking the least recently active of all that the server is not answering closed the lone client first.
    expect(lone.destroyed).toBe(false);
    expect(sockets.slice(1, 10).filter((s) => s.destroyed)).toHaveLength(3);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});
