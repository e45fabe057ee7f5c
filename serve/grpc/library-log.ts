/**
 * grpc-js's own log lines, bounded. It writes every metadata entry it drops (a key it refuses, a value it
 * cannot take) to stderr whole, whatever the server's `--quiet`: 1,000 calls each carrying a 15 KB invalid
 * key, within the metadata limit, wrote +14.5 MiB of log in 5 s (an outside attack), the client's bytes
 * unescaped. Each line is escaped and cut to MAX_LINE characters, and at most LINES_PER_WINDOW are written a
 * minute; those held back are counted in the next line written.
 */
import * as grpc from '@grpc/grpc-js';
import { ellipsized } from '../ellipsized.ts';
import { escapeForLog } from '../errors.ts';

const MAX_LINE = 200;
const LINES_PER_WINDOW = 20;
const WINDOW_MS = 60_000;

/** A logger for grpc-js that writes through `write` within the bounds above. */
export function boundedLibraryLog(write: (line: string) => void): Partial<Console> {
  let windowStart = Number.NEGATIVE_INFINITY;
  let written = 0;
  let heldBack = 0;
  const line =
    (severity: string) =>
    (...parts: unknown[]) => {
      const now = performance.now();
      if (now - windowStart >= WINDOW_MS) {
        windowStart = now;
        written = 0;
      }
      if (written >= LINES_PER_WINDOW) {
        heldBack++;
        return;
      }
      written++;
      const cut = ellipsized(escapeForLog(parts.map(String).join(' ')), MAX_LINE);
      const note = heldBack > 0 ? ` (${heldBack} grpc-js lines before it not written)` : '';
      heldBack = 0;
      write(`grpc-js ${severity} ${cut}${note}`);
    };
  return { error: line('E'), info: line('I'), debug: line('D') };
}

/** Routes grpc-js's log (process-wide) through `boundedLibraryLog` to stderr. */
export function boundGrpcLibraryLog(): void {
  grpc.setLogger(boundedLibraryLog((text) => process.stderr.write(`${text}\n`)));
}
