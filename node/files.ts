/** Atomic file writes: a reader (or a crash) never sees a half-written file. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';

/** How the project writes files; injectable so tests can fail any write (see test/train-faults.test.ts). */
export type WriteFile = (path: string, data: Uint8Array | string) => Promise<void>;

/** `<file>.<pid>.<8 hex>.tmp`: the temp names writeFileAtomic uses, and the only ones we ever clean up. */
const TEMP_NAME = /^(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** The temp file writeFileAtomic writes before renaming it over `path`. */
export function tempPathFor(path: string): string {
  return `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Write to a temp file beside `path`, fsync it, then rename over `path`. */
export const writeFileAtomic: WriteFile = async (path, data) => {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
};

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // our own writes are not in flight while we clean
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A killed writer answers signal 0 until its parent reaps it (a killed sweep's trainers wait for init): on Linux,
 * state Z or X in /proc/<pid>/stat means it writes nothing more. Elsewhere, signal 0 is all there is.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/**
 * Is `name` a temp file that a killed write of one of `ownFiles` left (a name writeFileAtomic makes, whose
 * writer is gone)? A user's `notes.123.cafebabe.tmp` is not ours to delete.
 */
export function isOwnStaleTempFile(name: string, ownFiles: readonly string[]): boolean {
  const match = TEMP_NAME.exec(basename(name));
  return match !== null && ownFiles.includes(match[1] as string) && !processAlive(Number(match[2]));
}

/** Remove the stale temp files of `ownFiles` in `dir` (see isOwnStaleTempFile); returns the names removed. */
export async function removeStaleTempFiles(dir: string, ownFiles: readonly string[]): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((name) => isOwnStaleTempFile(name, ownFiles));
  await Promise.all(stale.map((name) => rm(join(dir, name), { force: true })));
  return stale;
}

/**
 * Like writeFileAtomic, but never replaces an existing file: the complete temp file is hard-linked
 * into place, which fails with EEXIST (and leaves `path` untouched) if anyone created it first.
 */
export async function writeNewFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}

/** Serialize and atomically write a model. */
export async function writeModelFile(path: string, model: ModelProto): Promise<void> {
  await writeFileAtomic(path, encodeModel(model));
}
