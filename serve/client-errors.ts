/**
 * Requests Node's HTTP parser refuses before the app sees them — a malformed request line, headers over
 * `maxHeaderSize`, a request too slow to arrive, an `Expect` we don't meet, a CONNECT — answered like every
 * other refusal: `{ error: { code, message } }` with its status (the protocol's shape when the request
 * line that arrived names a /v2 path), not Node's bare status line (or, for CONNECT, nothing at all). The
 * message is ours alone: the client's bytes (`rawPacket`) are never echoed, only read for the path.
 */
import { type IncomingMessage, maxHeaderSize, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { answersSent } from './connection-turns.ts';
import { closingRefusal, targetPath } from './errors.ts';
import { closeLingering } from './lingering-close.ts';

interface Refusal {
  status: 400 | 408 | 413 | 431;
  code: string;
  message: string;
}

/** Node's parser error codes → our refusal; anything else is a malformed request (400), as Node says. */
function refusal(code: string | undefined, timeouts: { headersMs: number; requestMs: number }): Refusal {
  if (code === 'HPE_HEADER_OVERFLOW')
    return { status: 431, code: 'headers_too_large', message: `request headers over ${maxHeaderSize} bytes` };
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW')
    return { status: 413, code: 'payload_too_large', message: 'chunk extensions too large' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return {
      status: 408,
      code: 'request_timeout',
      message: `headers must arrive within ${timeouts.headersMs / 1000} s and the request within ${timeouts.requestMs / 1000} s`,
    };
  return { status: 400, code: 'malformed_request', message: 'malformed HTTP request' };
}

/** The request Node's parser last handed on for `socket` (the one it failed in, if not yet whole). */
const parsedRequest = (socket: Duplex) =>
  (socket as Duplex & { parser?: { incoming?: IncomingMessage | null } }).parser?.incoming;

/**
 * The path of the request Node refused, where what arrived names one: the request line in the bytes the
 * parser failed on, or the request it had parsed (headers complete, the body too slow); '' when neither.
 */
function refusedPath(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): string {
  return targetPath(requestLine(error)?.[2] ?? parsedRequest(socket)?.url);
}

/** The refused request's method, where known (a HEAD is answered without the body). */
function refusedMethod(error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex): string | undefined {
  return requestLine(error)?.[1] ?? parsedRequest(socket)?.method;
}

// A request line longer than what is looked at (4 KiB) still names its method and the start of its target:
// a /v2 path too long for the parser is refused in the protocol's shape all the same.
function requestLine(error: { rawPacket?: Buffer }): RegExpExecArray | null | undefined {
  const line = error.rawPacket?.subarray(0, 4096).toString('latin1').split('\r\n', 1)[0];
  return line ? /^([A-Z]+) (\S+)(?: HTTP\/\d|$)/.exec(line) : undefined;
}

/** A whole HTTP/1.1 response with a JSON error body (its headers alone to a HEAD), closing the connection. */
function rawResponse(
  status: number,
  code: string,
  message: string,
  extraHeaders: Record<string, string> = {},
  path = '',
  method?: string,
): string {
  const { headers, body } = closingRefusal(status, code, message, path);
  const lines = Object.entries({ ...headers, ...extraHeaders }).map(([name, value]) => `${name}: ${value}`);
  return [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, ...lines, '', method === 'HEAD' ? '' : body].join('\r\n');
}

/** The methods the server answers (OPTIONS too, with --cors). */
const ALLOW = 'GET, HEAD, POST, PUT';

/** Answer `server`'s client errors and unmet expectations as JSON. */
export function answerClientErrors(server: Server, timeouts: { headersMs: number; requestMs: number }): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, code, message } = refusal(error.code, timeouts);
    const answer = rawResponse(status, code, message, {}, refusedPath(error, socket), refusedMethod(error, socket));
    // After the answers to the requests before it on this connection (pipelined ones wait their turn,
    // connection-turns.ts): written at once, the refusal was read as the answer to the first of them.
    void answersSent(socket as Socket, parsedRequest(socket)).then(() => {
      if (!socket.writable) return void socket.destroy();
      // Closed once written, without waiting for the client's FIN (HTTP sockets are half-open).
      socket.once('finish', () => socket.destroy());
      socket.end(answer);
    });
  });
  // CONNECT (a proxy's method) is handed over as a bare socket, which Node would just close unanswered.
  server.on('connect', (request: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(
      rawResponse(
        405,
        'method_not_allowed',
        'CONNECT is not supported: this is not a proxy',
        { Allow: ALLOW },
        targetPath(request.url),
      ),
    );
    closeLingering(socket);
    socket.resume(); // whatever the client sends after it is dropped
  });
  // Node's own answer is a bare 417; the request's body (if any) is never read, so the connection closes.
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const refusal = closingRefusal(
      417,
      'expectation_failed',
      "the only Expect supported is '100-continue'",
      targetPath(request.url),
    );
    response.writeHead(refusal.status, refusal.headers).end(refusal.body);
  });
}
