/**
 * Temp files that killed writes of a run left beside their targets: `<file>.<pid>.<8 hex>.tmp`, the
 * names export/files.ts's writeFileAtomic makes. Only those whose target is one of the run's own files
 * and whose writer is gone count: a user's `notes.123.cafebabe.tmp` is not ours to delete.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const TEMP_NAME = /^(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // our own writes are not in flight while we clean
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is `name` a temp file a killed write of one of `ownFiles` left? */
export function isOwnStaleTempFile(name: string, ownFiles: readonly string[]): boolean {
  const match = TEMP_NAME.exec(name);
  return match !== null && ownFiles.includes(match[1] as string) && !processAlive(Number(match[2]));
}

/** Remove the stale temp files of `ownFiles` in `dir`; returns the names removed. */
export async function removeOwnStaleTempFiles(dir: string, ownFiles: readonly string[]): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((name) => isOwnStaleTempFile(name, ownFiles));
  await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
  return stale;
}
