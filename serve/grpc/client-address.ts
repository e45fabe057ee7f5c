/**
 * The client's own address for grpc-js's sessions. Clients reach grpc-js through the front (server.ts), so
 * every session's socket is the front's own connection to it and shows no client: the batch queue's shares
 * (queue-shares.ts) then counted each gRPC connection as a client, and one address with 32 connections held
 * 32 shares. The front writes the client's address first, in a short preamble, and the inner server reads it
 * off each connection before HTTP/2 begins (Node's HTTP/2 session takes the bytes already read after it).
 */
import type { Http2Server, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';

/** A preamble longer than this is not the front's (an IPv6 address with a zone is under 64 characters). */
const MAX_ADDRESS_BYTES = 255;
/** The front writes its preamble at once; a connection silent this long is not the front's. */
const PREAMBLE_TIMEOUT_MS = 5000;

/** The bytes the front writes first on its connection for a client at `address`: its length, then it. */
export function addressPreamble(address: string): Buffer {
  const bytes = Buffer.from(address, 'utf8').subarray(0, MAX_ADDRESS_BYTES);
  return Buffer.concat([Buffer.of(bytes.length), bytes]);
}

/** Where a connection's preamble is kept on its socket (read through the session's socket proxy). */
const ADDRESS = Symbol('client address');
const sessionAddresses = new WeakMap<Http2Session, string>();

/**
 * Each of `servers`' connections has its preamble read off before the server's own 'connection' listeners
 * (HTTP/2's among them) are given it; each session then knows its client's address (`clientAddress`).
 */
export function readAddressPreambles(servers: Iterable<Http2Server>): void {
  for (const server of servers) {
    const own = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      readPreamble(socket).then(
        (address) => {
          Object.assign(socket, { [ADDRESS]: address });
          for (const listener of own) listener.call(server, socket);
        },
        () => socket.destroy(),
      );
    });
    server.on('session', (session: Http2Session) => {
      const address = (session.socket as unknown as { [ADDRESS]?: string })[ADDRESS];
      if (address !== undefined) sessionAddresses.set(session, address);
    });
  }
}

/** The address the front gave for `session`'s client; undefined where none came. */
export const clientAddress = (session: Http2Session | undefined): string | undefined =>
  session && sessionAddresses.get(session);

/** The preamble off `socket`; whatever came after it is put back for the next reader. */
function readPreamble(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const done = (error?: Error, address?: string) => {
      clearTimeout(timer);
      socket.off('readable', onReadable).off('error', onEnd).off('end', onEnd).off('close', onEnd);
      if (error) reject(error);
      else resolve(address as string);
    };
    const onEnd = () => done(new Error('the connection ended before its preamble'));
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        got = Buffer.concat([got, chunk]);
        const length = got[0];
        if (length === undefined || got.length < 1 + length) continue;
        const rest = got.subarray(1 + length);
        if (rest.length > 0) socket.unshift(rest);
        return done(undefined, got.subarray(1, 1 + length).toString('utf8'));
      }
    };
    const timer = setTimeout(() => done(new Error('no preamble')), PREAMBLE_TIMEOUT_MS);
    socket.on('readable', onReadable).on('error', onEnd).on('end', onEnd).on('close', onEnd);
  });
}
