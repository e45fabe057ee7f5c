/**
 * Which HTTP requests arrived after the server began to stop. A request's turn can come long after it
 * arrived (pipelined requests wait for the answers before them: connection-turns.ts), and what arrived before
 * SIGTERM is still answered: deciding "stopping" at its turn answered 503 to pipelined requests that had
 * arrived before (an outside attack: 200, 200, 200, 503, then nothing).
 */
import type { IncomingMessage, Server } from 'node:http';

const late = new WeakSet<IncomingMessage>();

/** Notes each request of `server` that arrives while `stopping()` holds, as Node parses it. */
export function noteArrivalsAtStop(server: Server, stopping: () => boolean): void {
  server.prependListener('request', (request: IncomingMessage) => {
    if (stopping()) late.add(request);
  });
}

/** Whether `request` arrived after the server began to stop. */
export const arrivedWhileStopping = (request: IncomingMessage) => late.has(request);
