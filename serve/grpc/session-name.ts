/**
 * A name per HTTP/2 session, for the budgets that count by client: through the front (server.ts) every
 * session comes from the same address, so a gRPC client is its connection.
 */
import type { Http2Session } from 'node:http2';

const names = new WeakMap<Http2Session, string>();
let sessions = 0;

/** `session`'s name (one shared name where grpc-js did not show the session). */
export function sessionName(session: Http2Session | undefined): string {
  if (!session) return 'grpc';
  let name = names.get(session);
  if (!name) {
    name = `grpc-session-${++sessions}`;
    names.set(session, name);
  }
  return name;
}
