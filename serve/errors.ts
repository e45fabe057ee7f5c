/**
 * Client errors as `{ error: { code, message } }` with a 4xx status — on the Open Inference Protocol's
 * routes (/v2) as `{ error: message, code }`, the protocol's `{ "error": "<message>" }` that its clients read
 * (Triton's raise it as their exception's message); anything else is our bug (500).
 * Messages never carry stack traces or file paths: `publicMessage` strips absolute paths from any
 * text that came from a library (ORT, the file system) before it reaches a response or /api/models.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { wellFormed } from './ellipsized.ts';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(wellFormed(message)); // a name cut to a length can end in half a character
  }
}

/** The routes of the Open Inference Protocol (KServe v2, Triton's HTTP API). */
const PROTOCOL_PATH = /^\/v2(?:\/|$)/;

/** The JSON body of a refusal of a request for `path` (the protocol's shape on its routes). */
export const errorBody = (code: string, message: string, path = '') =>
  PROTOCOL_PATH.test(path) ? { error: message, code } : { error: { code, message } };

/** The path of a request target (`/v2/models/m?x=1` → `/v2/models/m`), for a refusal's shape; '' without one. */
export const targetPath = (target: string | undefined) => (target ?? '').split('?')[0] ?? '';

/**
 * A refusal answered outside Hono (Node's own HTTP events, the request listener in front of the app): the
 * same JSON body, its length, and `Connection: close` — nothing after it on that connection is read.
 */
export function closingRefusal(status: number, code: string, message: string, path = '') {
  const body = JSON.stringify(errorBody(code, message, path));
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  };
  return { status, headers, body };
}

/** Absolute POSIX or Windows paths (and file: URLs) inside a message. */
const ABSOLUTE_PATH = /(?:file:\/\/)?(?:\/[^\s'"`:,)]+)+|[A-Za-z]:\\[^\s'"`,)]+/g;

/**
 * Where ORT threw: a source location and the function, bare (`tensorprotoutils.cc:434 ValidateExternalDataPathFromDir`)
 * or as a C++ signature (`graph.cc:1345 onnxruntime::Graph::Graph(const onnxruntime::Model&, …)`, one level of
 * nested parentheses). They say nothing to a client and pushed the reason past the 300-character cut.
 */
const NATIVE_FRAME =
  /[^\s:]+\.(?:cc|cpp|cxx|h|hpp):\d+\s+(?:(?:[\w:~<>*&]+\s+)?[\w~<>]*::[\w:~<>]+\((?:[^()]|\([^()]*\))*\)(?:\s*const)?|[\w:~<>]+)\s*/g;

/** One line of `text`, ORT's source frames dropped, absolute paths cut to their last component, ≤ 300 characters. */
export function publicMessage(text: string): string {
  // Capped before the patterns run: their cost grows with the line, and only 300 characters are shown.
  const line = (text.split('\n')[0] ?? '').slice(0, 4000).replace(NATIVE_FRAME, '');
  return wellFormed(
    line.replace(ABSOLUTE_PATH, (path) => `…/${path.split(/[\\/]/).filter(Boolean).at(-1) ?? ''}`).slice(0, 300),
  );
}

/** Control characters (CR, LF, ESC…) shown as \xNN, so a request path can't forge or colour log lines. */
export function escapeForLog(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
