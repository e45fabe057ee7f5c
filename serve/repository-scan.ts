/**
 * List a model repository (`<root>/<name>/<version>/model.onnx`) without ever throwing: an entry that
 * can't be read (a dangling symlink, a folder without permission, a file that vanished mid-scan) becomes a
 * problem with a cause, and every other entry is still listed. Problems name paths relative to the root.
 *
 * The listing runs every second beside requests, so it never holds the event loop: every file-system call
 * is asynchronous, one at a time (the scan takes at most one of libuv's threads, which image decoding
 * shares), and the work between two calls is constant — 10,000 version folders cost time, not latency.
 * Folders it can't serve (an invalid model name, a version folder that isn't a number) are `skipped`:
 * reported, unlike other stray entries, because an operator who made them expected them to be served.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileStamp } from '../node/regular-file.ts';
import { isValidModelName, MODEL_FILE, VERSION_PATTERN } from '../node/repository.ts';
import { escapeForLog } from './errors.ts';

export interface FoundFile {
  name: string;
  version: number;
  path: string;
  /** Changes when the file is rewritten, replaced or its link leads elsewhere (node/regular-file.ts fileStamp). */
  stamp: string;
}

export interface ScanProblem {
  /** Relative to the repository root, e.g. `cnn/2/model.onnx`. */
  where: string;
  /** An errno code such as ENOENT or EACCES, or a short word. */
  cause: string;
}

export interface ScanResult {
  files: FoundFile[];
  /** Entries that could not be read: what they serve is unknown, not gone. */
  problems: ScanProblem[];
  /** Folders that are not served because of their name. */
  skipped: ScanProblem[];
}

const causeOf = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'unreadable';

/** A folder name as it may appear in a log line: control characters escaped, bounded. */
const shown = (name: string) => escapeForLog(name).slice(0, 120);

async function linkExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

const entries = (dir: string): Promise<Dirent[]> => readdir(dir, { withFileTypes: true });

export async function scanRepository(root: string): Promise<ScanResult> {
  const result: ScanResult = { files: [], problems: [], skipped: [] };
  let names: Dirent[];
  try {
    names = await entries(root);
  } catch (error) {
    result.problems.push({ where: '.', cause: causeOf(error) });
    return result;
  }
  for (const nameEntry of names) {
    const name = nameEntry.name;
    if (!isValidModelName(name)) {
      // A stray file is nobody's model; a folder is someone's mistake worth a line.
      if (await isDirectory(join(root, name))) result.skipped.push({ where: shown(name), cause: 'invalid model name' });
      continue;
    }
    let versions: Dirent[];
    try {
      if (!(await stat(join(root, name))).isDirectory()) continue;
      versions = await entries(join(root, name));
    } catch (error) {
      result.problems.push({ where: name, cause: causeOf(error) });
      continue;
    }
    for (const versionEntry of versions) await scanVersion(root, name, versionEntry, result);
  }
  return result;
}

async function scanVersion(root: string, name: string, entry: Dirent, result: ScanResult): Promise<void> {
  if (!VERSION_PATTERN.test(entry.name)) {
    const folder = entry.isDirectory() || (entry.isSymbolicLink() && (await isDirectory(join(root, name, entry.name))));
    if (folder) result.skipped.push({ where: `${name}/${shown(entry.name)}`, cause: 'not a version number' });
    return;
  }
  const where = `${name}/${entry.name}/${MODEL_FILE}`;
  const path = join(root, name, entry.name, MODEL_FILE);
  try {
    const found = await stat(path);
    if (!found.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOTFILE' });
    result.files.push({ name, version: Number(entry.name), path, stamp: fileStamp(found) });
  } catch (error) {
    // A version folder without its model yet (being copied in) is normal; a dangling link is not.
    if (causeOf(error) === 'ENOENT' && !(await linkExists(path))) return;
    result.problems.push({ where, cause: causeOf(error) });
  }
}
