/** A served model's metadata_props, bounded (the runner sends them, the server keeps and lists them). */
import { NORMALIZATION_KEY } from '../core/contract.ts';
import { ellipsized } from './ellipsized.ts';

/** What of a model's metadata the server keeps and lists: enough for any real model's, never a file's worth. */
export const METADATA_LIMITS = { entries: 32, keyChars: 64, valueChars: 512 } as const;

/**
 * A model's metadata_props, bounded: a repository file (or an upload) could carry megabytes of them, and
 * GET /api/models lists every version's — an outside attack's 8 MB entry made each 40-byte request an 8 MB
 * answer, and a few unread pipelined ones took the server to 1 GiB. Past the limits, entries are left out and
 * long values cut (ending in "…").
 */
export function boundedMetadata(metadata: Record<string, string>): Record<string, string> {
  const { entries, keyChars, valueChars } = METADATA_LIMITS;
  // A Map, not an object: keys like __proto__ are data here.
  const kept = new Map<string, string>();
  const cut = (value: string) => ellipsized(value, valueChars);
  // The input contract's key first: how the server feeds the model must not depend on the others.
  const all = new Map(Object.entries(metadata));
  const normalization = all.get(NORMALIZATION_KEY);
  if (normalization !== undefined) kept.set(NORMALIZATION_KEY, cut(normalization));
  for (const [key, value] of all) {
    if (kept.size >= entries) break;
    if (key.length <= keyChars && !kept.has(key)) kept.set(key, cut(value));
  }
  return Object.fromEntries(kept);
}
