/**
 * Whether a request comes from a web page on another origin, as browsers tell: an Origin naming another
 * host (or `null`, an opaque origin), or Sec-Fetch-Site: cross-site. Non-browser clients send neither.
 */
import type { Context } from 'hono';

export function fromAnotherOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  if (origin === 'null') return true;
  if (origin !== undefined && hostOf(origin) !== c.req.header('host')) return true;
  return c.req.header('sec-fetch-site') === 'cross-site';
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
