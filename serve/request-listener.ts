/**
 * The Node request listener in front of the app: @hono/node-server's, except that the requests it refuses
 * before the app runs — a Host that is no host (`a b`, `%zz`, `[::1`, `x/y`, a port past 65535), a target
 * that is no path (`*`, `file:///…`) — and HTTP/1.1 without a Host (which Node itself would refuse with an
 * empty 400) are answered like every other refusal: a JSON 400, closing the connection. The message is
 * ours alone; the request's bytes are never echoed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, RequestError } from '@hono/node-server';
import { closingRefusal, targetPath } from './errors.ts';

type Fetch = Parameters<typeof getRequestListener>[0];

const NO_HOST = (path: string) => closingRefusal(400, 'bad_request', 'an HTTP/1.1 request needs a Host header', path);
const BAD_URL = (path: string) =>
  closingRefusal(400, 'bad_request', 'the Host header and request target do not form a valid http URL', path);
/** A failure of the app itself, outside Hono's onError (never seen; answered without details all the same). */
const INTERNAL = (path: string) => closingRefusal(500, 'internal', 'internal server error', path);

/**
 * `fetch` (the app's) as a Node request listener. `hostname` stands in for a missing Host on HTTP/1.0.
 * The server must be created with `requireHostHeader: false`, so that a request without Host reaches it.
 */
export function requestListener(fetch: Fetch, hostname: string) {
  let refusing = '';
  const listener = getRequestListener(fetch, {
    hostname,
    errorHandler: (error) => {
      const { status, body, headers } = (error instanceof RequestError ? BAD_URL : INTERNAL)(refusing);
      return new Response(body, { status, headers });
    },
  });
  return (incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> | undefined => {
    if (incoming.httpVersion === '1.1' && incoming.headers.host === undefined) {
      const refusal = NO_HOST(targetPath(incoming.url));
      outgoing.writeHead(refusal.status, refusal.headers).end(refusal.body);
      return undefined;
    }
    // errorHandler runs synchronously inside listener() for a bad URL (no await before it): this request's path.
    refusing = targetPath(incoming.url);
    return listener(incoming, outgoing);
  };
}
