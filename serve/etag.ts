/**
 * `If-None-Match` as RFC 9110 §13.1.2 reads it: `*`, or a comma-separated list of entity tags, each maybe
 * weak (`W/"…"`), compared weakly (the opaque tags equal, `W/` ignored) — so a browser or proxy that
 * weakened our tag, or sends several it holds, still gets its 304.
 */

/** An entity tag: optional `W/`, then a quoted opaque tag (which may itself contain commas). */
const ENTITY_TAG = /(?:W\/)?"([^"]*)"/g;

/** Whether `header` (the request's If-None-Match) matches the current `etag` (`"…"` or `W/"…"`). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  for (const match of header.matchAll(ENTITY_TAG)) if (`"${match[1]}"` === opaque) return true;
  return false;
}
