/** Request bodies read within the one body limit, and JSON parsed without trusting its shape. */

import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw } from 'node:zlib';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { issuesInOneLine, type ZodIssues } from '../core/zod-issues.ts';
import { type BodyBudget, type OneAtATime, remoteAddress } from './body-budget.ts';
import { waitingOnServer } from './connections.ts';
import { HttpError } from './errors.ts';
import { ownTurn } from './own-turn.ts';

/** The one body limit of every route (1 MiB unless `serve --max-body-bytes` says otherwise). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Bodies past this size are handed on in a loop turn of their own (serve/own-turn.ts). */
const OWN_TURN_BYTES = 64 * 1024;

/**
 * The request's body, its memory taken from the app's body budget (see body-budget.ts) past the free part
 * when the app has one. A body over `limit` is read to its end (discarding, so the client can read the
 * 413) unless it passes the hard cut-off of the body-limit middleware first.
 */
export async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const budget = c.get('bodyBudget' as never) as BodyBudget | undefined;
  const lock = c.get('bodyLock' as never) as OneAtATime | undefined;
  const reader = c.req.raw.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const unlock = await lock?.acquire(c.req.raw.signal);
  const address = remoteAddress(c);
  // Evicted for its pace while others wait for memory (body-budget.ts): the read ends with a 408.
  let evict = () => {};
  const tooSlow = new Promise<never>((_, reject) => {
    evict = () =>
      reject(new HttpError(408, 'body_too_slow', 'the request body arrived too slowly while others waited for memory'));
  });
  tooSlow.catch(() => {});
  const account = budget?.open(address, () => evict());
  const signal = c.req.raw.signal;
  const socket = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket as Socket | undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  let taken = 0;
  // Held to the budget until the body is handed on: while it is read, decoded (a 1 KB gzip body may
  // decode to 1 MiB: what it decodes to counts) and while it waits for its turn.
  const hold = async (bytes: number) => {
    const over = bytes - (budget?.limits.freeBytes ?? bytes) - taken;
    if (!account || over <= 0) return;
    waitingOnServer(socket, true);
    try {
      await account.take(over, signal);
    } finally {
      waitingOnServer(socket, false);
    }
    taken += over;
  };
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), tooSlow]);
      if (done) break;
      account?.arrived(value.length);
      size += value.length;
      if (size > limit) {
        // Read on, keep nothing: the answer is a 413. What it held goes back now, not at its end (a body past
        // the limit, trickled in, held ~940 KiB of the budget for the whole request timeout).
        if (chunks.length > 0) {
          chunks.length = 0;
          account?.close();
        }
        continue;
      }
      await hold(size);
      chunks.push(value);
    }
    account?.complete();
    unlock?.();
    if (size > limit)
      throw new HttpError(413, 'payload_too_large', `request body is ${size} bytes; the limit is ${limit}`);
    const encoding = c.req.header('content-encoding');
    // A compressed body may decode to the limit: that room is taken before decoding, not after (an outside
    // attack's 1,000 bodies of 1 KB gzip held 645 MB of decoded buffers while they waited for it).
    if (isEncoded(encoding)) await hold(limit);
    const body = await decoded(Buffer.concat(chunks, size), encoding, limit);
    // What every route does next with a large body (JSON parsed and checked, binary tensors decoded,
    // multipart scanned) runs synchronously after this, in a loop turn of its own; a small one (under a
    // millisecond) goes at once rather than queue behind them. (Only readJson took turns at first: the binary
    // extension's JSON header and the repository index held health 5–7.6 s under an outside attack's floods.)
    if (body.length > OWN_TURN_BYTES) await ownTurn(address, signal);
    return body;
  } catch (error) {
    if (error instanceof HttpError && error.code === 'body_too_slow') void reader.cancel().catch(() => {});
    throw error;
  } finally {
    account?.close();
    unlock?.();
  }
}

type Decoder = (bytes: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>;
const unzip = promisify(gunzip) as Decoder;
const unzlib = promisify(inflate) as Decoder;
const unraw = promisify(inflateRaw) as Decoder;
const unbrotli = promisify(brotliDecompress) as Decoder;
/** HTTP's "deflate" is zlib-wrapped; some clients send the raw stream (tried when the zlib header is wrong). */
const undeflate: Decoder = (bytes, options) =>
  unzlib(bytes, options).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_BUFFER_TOO_LARGE') throw error; // a 413, not a reason to try raw deflate
    return unraw(bytes, options);
  });
/** Request codings Triton's clients send (gzip, deflate) and brotli; the decoded body has the same limit. */
const DECODERS: Record<string, Decoder> = { gzip: unzip, 'x-gzip': unzip, deflate: undeflate, br: unbrotli };

/** The codings a Content-Encoding names, identity left out. */
const codingsOf = (encoding: string | undefined) =>
  (encoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
/** Whether a Content-Encoding names a coding the body must be decoded from (what readBody decodes). */
export const isEncoded = (encoding: string | undefined) => codingsOf(encoding).length > 0;

/**
 * The body a Content-Encoding describes, decoded off the event loop (zlib's pool) and stopped at `limit`
 * decoded bytes, so a small bomb can't expand past what an uncompressed body may be. An encoding we don't
 * read is refused (415), never passed on as if it were the body.
 */
async function decoded(bytes: Buffer, encoding: string | undefined, limit: number): Promise<Buffer> {
  const codings = codingsOf(encoding);
  if (codings.length === 0) return bytes;
  const shown = codings.join(', ').slice(0, 60);
  if (codings.length > 1 || !DECODERS[codings[0] as string])
    throw new HttpError(
      415,
      'unsupported_content_encoding',
      `Content-Encoding '${shown}' is not read here: send gzip, deflate, br or none`,
    );
  try {
    return await (DECODERS[codings[0] as string] as Decoder)(bytes, { maxOutputLength: limit });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new HttpError(413, 'payload_too_large', `the decoded request body is over the limit of ${limit} bytes`);
    throw new HttpError(400, 'invalid_encoding', `the body is not valid ${shown} data`);
  }
}

/** Parse a JSON body (UTF-8). V8's parser is not recursive, so deep nesting parses; checking it is the caller's job. */
export async function readJson(c: Context, limit: number): Promise<unknown> {
  const bytes = await readBody(c, limit);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not UTF-8 text');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'invalid_json', `body is not valid JSON: ${(error as Error).message.slice(0, 120)}`);
  }
}

/**
 * An optional JSON object body, as Triton's clients send to the repository routes: none, `{}` or a few
 * fields, with whatever content type (curl's default among them), so none is required.
 */
export async function readJsonObject(c: Context, limit: number): Promise<Record<string, unknown>> {
  const bytes = await readBody(c, limit);
  const text = new TextDecoder().decode(bytes).trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'body is not valid JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new HttpError(400, 'invalid_request', 'body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A short, depth-safe description of any JSON value for an error message. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value);
  return String(value);
}

/** The one key of `body` that names one of `shapes` (own properties only: `constructor` is not a shape). */
export function shapeKey<K extends string>(body: unknown, shapes: readonly K[]): K | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return shapes.find((k) => Object.hasOwn(body, k));
}

/** A validation failure as one line: the first issue, at its path (`inputs.0.shape: …`). */
export const zodMessage = (error: ZodIssues) =>
  error.issues.length === 0 ? 'invalid request' : issuesInOneLine(error, 'body', 1);
