/**
 * Requests pipelined on one connection are handled one at a time: the app sees a request only once the answer
 * before it on that connection has been handed to the kernel, or the connection is gone. HTTP/1.1 answers
 * leave in order anyway, so starting later requests early bought nothing but memory: each held its body, its
 * decoded tensor and its answer behind an answer its client was not reading (an outside attack's 256
 * connections × 16 pipelined 200 KB requests, never reading, took +1.2 GiB while only ~50 answers were ever
 * computed). Until its turn a request's body is not read, and Node stops reading a socket once about 16 KiB of
 * an unread body wait: a connection holds one request's worth of memory, however many it pipelines.
 *
 * A request waiting for its turn is not a slow client to Node: its request timeout still runs, so a request
 * pipelined behind an answer that is not read within the request timeout is answered 408 and its connection
 * closed. A request whose connection closed before its turn is dropped unrun.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

type Listener = (incoming: IncomingMessage, outgoing: ServerResponse) => unknown;

/** The latest request's answer on each connection: the next request's turn comes when it is sent. */
const lastAnswer = new WeakMap<Socket, Promise<void>>();

/** What each request's turn waits for: the answer before it on its connection. */
const turnOf = new WeakMap<IncomingMessage, Promise<void>>();

/**
 * Resolves once the answers to the requests `socket` carried before `failing` (the request Node's parser
 * failed on, when it had handed it on; else all so far) are sent or given up: what Node's own refusal must
 * wait for, or the client reads it as an earlier request's answer.
 */
export function answersSent(socket: Socket, failing?: IncomingMessage | null): Promise<void> {
  // A request received whole is not the one that failed: the parser had gone on to the next.
  const during = failing && !failing.complete ? turnOf.get(failing) : undefined;
  return during ?? lastAnswer.get(socket) ?? Promise.resolve();
}

/** `listener`, called for each connection's requests in turn. */
export function inTurnPerConnection(listener: Listener): Listener {
  return (incoming, outgoing) => {
    const socket = incoming.socket;
    const before = lastAnswer.get(socket);
    lastAnswer.set(socket, answered(outgoing));
    turnOf.set(incoming, before ?? Promise.resolve());
    if (!before) return listener(incoming, outgoing);
    return before.then(() => {
      if (socket.destroyed) return undefined;
      return listener(incoming, outgoing);
    });
  };
}

/** Resolves once `outgoing` has been handed to the kernel in full, or given up. */
function answered(outgoing: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (outgoing.writableFinished || outgoing.destroyed) return resolve();
    outgoing.once('finish', () => resolve());
    outgoing.once('close', () => resolve());
  });
}
