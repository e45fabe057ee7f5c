/**
 * Who may load and unload models. On a loopback address only this machine can ask, so no key is needed
 * unless one is set. On any other address the routes need the key (`Authorization: Bearer <key>`; 401
 * without it), and are off (403, saying why) when no key is configured — an open load/unload on the
 * network would let anyone take models down. A request from a web page on another origin (allowed at all
 * only with --cors) needs the key even on loopback: any page the user opens could otherwise load, unload or
 * publish models on their machine's server (an outside attack did, with --cors and no key).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Env, MiddlewareHandler } from 'hono';
import { fromAnotherOrigin } from './cross-origin.ts';
import { HttpError } from './errors.ts';

export interface ModelControlAccess {
  /** The key mutating model control requests must carry (--api-key, MNIST_SERVE_API_KEY). */
  apiKey?: string;
  /** The server listens on a non-loopback address. */
  remote: boolean;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|::ffff:127(?:\.\d{1,3}){3})$/i;

/** Whether `host` (a --host value) is reachable from this machine only. */
export const isLoopback = (host: string) => LOOPBACK.test(host.replace(/^\[|\]$/g, ''));

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Throws 401/403 unless `c` may change what is loaded. */
export function assertMayControlModels(c: Context, access: ModelControlAccess): void {
  assertMayControl(access, c.req.header('authorization'), fromAnotherOrigin(c));
}

/**
 * Throws 401/403 unless a request with the `authorization` header (or gRPC metadata) given may change what
 * is loaded; `crossOrigin`: it came from a web page on another origin.
 */
export function assertMayControl(access: ModelControlAccess, authorization: string | undefined, crossOrigin: boolean) {
  if (access.apiKey === undefined || access.apiKey === '') {
    if (crossOrigin)
      throw new HttpError(
        403,
        'model_control_off',
        'a page on another origin may not load, unload or publish models without a key: start the server with --api-key or MNIST_SERVE_API_KEY',
      );
    if (!access.remote) return;
    throw new HttpError(
      403,
      'model_control_off',
      'loading and unloading models over the network needs a key: start the server with --api-key or MNIST_SERVE_API_KEY',
    );
  }
  const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
  // Compared as digests: equal lengths, constant time.
  if (!timingSafeEqual(digest(given), digest(access.apiKey)))
    throw new HttpError(401, 'unauthorized', 'model control needs the header Authorization: Bearer <api key>');
}

/** A route middleware refusing (401/403) a request that may not change what is loaded, before its body is read. */
export const mayControlModels =
  (access: ModelControlAccess): MiddlewareHandler<Env> =>
  async (c, next) => {
    assertMayControlModels(c, access);
    await next();
  };
