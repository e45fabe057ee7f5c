/**
 * Client errors as `{ error: { code, message } }` with a 4xx status; anything else is our bug (500).
 * Messages never carry stack traces or file paths: `publicMessage` strips absolute paths from any
 * text that came from a library (ORT, the file system) before it reaches a response or /api/models.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** Absolute POSIX or Windows paths (and file: URLs) inside a message. */
const ABSOLUTE_PATH = /(?:file:\/\/)?(?:\/[^\s'"`:,)]+)+|[A-Za-z]:\\[^\s'"`,)]+/g;

/** One line of `text`, absolute paths replaced by their last component, at most 300 characters. */
export function publicMessage(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.replace(ABSOLUTE_PATH, (path) => `…/${path.split(/[\\/]/).filter(Boolean).at(-1) ?? ''}`).slice(0, 300);
}

/** Control characters (CR, LF, ESC…) shown as \xNN, so a request path can't forge or colour log lines. */
export function escapeForLog(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
