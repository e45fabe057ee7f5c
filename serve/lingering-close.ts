/**
 * Closing a connection without losing its answer. A server that closes while the client is still sending
 * (a body refused before it was read: a 413 from Content-Length) leaves bytes unread, so the kernel resets
 * the connection, and the reset can destroy the answer before the client reads it: Node's fetch got no 413
 * at all for a third of 3 MiB bodies. So, like nginx's lingering close, a connection we close is half-closed
 * (our FIN follows the answer) and whatever the client still sends is read and dropped until it closes
 * too, for at most `ms`.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How long a closing connection keeps reading what the client still sends. */
export const LINGER_MS = 2000;

const lingering = new WeakSet<Socket>();

/** Half-close `socket` now and destroy it once the client closes its side, or after `ms`. */
export function closeLingering(socket: Socket, ms = LINGER_MS): void {
  if (lingering.has(socket) || socket.destroyed) return;
  lingering.add(socket);
  const timer = setTimeout(() => socket.destroy(), ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.end();
}

/**
 * Every connection `server` closes after an answer (`Connection: close`, said by the client or by us)
 * lingers. Node closes those with `socket.destroySoon()` (FIN, then destroy as soon as it is written), and
 * so does @hono/node-server when it gives up draining a body; each socket's is replaced.
 */
export function lingerOnClose(server: Server, ms = LINGER_MS): void {
  server.on('connection', (socket: Socket) => {
    socket.destroySoon = () => closeLingering(socket, ms);
  });
}
