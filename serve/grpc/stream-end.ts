/** How a call's HTTP/2 stream ends on the server's side: whether its status has gone, and its reset after it. */
import type { ServerHttp2Stream } from 'node:http2';

/** Whether the call's status has gone out (in its headers, or as trailers). */
export const statusSent = (stream: ServerHttp2Stream) =>
  stream.sentTrailers !== undefined || stream.sentHeaders?.['grpc-status'] !== undefined;

/** Reset `stream` with `code` after a turn of the loop, unless it closed meanwhile: a status just written goes out first. */
export function closeAfterTurn(stream: ServerHttp2Stream, code: number): void {
  setImmediate(() => stream.closed || stream.close(code));
}
