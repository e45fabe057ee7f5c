/**
 * A refusal's code and message from its JSON body, checking its shape by route: `{ error: { code, message } }`
 * on ours, `{ error: "<message>", code }` on the Open Inference Protocol's (/v2), as its clients read it.
 */
export interface Refusal {
  code: string;
  message: string;
}

export function refusalOf(body: unknown, path: string): Refusal {
  const { error, code } = (body ?? {}) as { error?: unknown; code?: unknown };
  if (/^\/v2(?:\/|$)/.test(path)) {
    if (typeof error !== 'string' || typeof code !== 'string')
      throw new Error(`${path}: not the protocol's error shape: ${JSON.stringify(body).slice(0, 200)}`);
    return { code, message: error };
  }
  const inner = error as Partial<Refusal> | undefined;
  if (typeof inner?.code !== 'string' || typeof inner.message !== 'string')
    throw new Error(`${path}: not our error shape: ${JSON.stringify(body).slice(0, 200)}`);
  return { code: inner.code, message: inner.message };
}

/** The same from a fetch Response to `path` (its body read). */
export async function refusalFrom(response: Response, path?: string): Promise<Refusal> {
  if (path === undefined && !response.url) throw new Error('refusalFrom: a Response without a URL needs its path');
  return refusalOf(await response.json(), path ?? new URL(response.url).pathname);
}

/** The whole JSON body a refusal of a request for `path` should have. */
export const refusalBody = (path: string, code: string, message: string) =>
  /^\/v2(?:\/|$)/.test(path) ? { error: message, code } : { error: { code, message } };
