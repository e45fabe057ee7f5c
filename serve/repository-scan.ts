/**
 * List a model repository (`<root>/<name>/<version>/model.onnx`) without ever throwing: an entry that
 * can't be read (a dangling symlink, a folder without permission, a file that vanished mid-scan) becomes a
 * problem with a cause, and every other entry is still listed. Problems name paths relative to the root.
 */
import { type Dirent, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isValidModelName, MODEL_FILE } from '../export/repository.ts';

export interface FoundFile {
  name: string;
  version: number;
  path: string;
  /** Changes when the file is rewritten (size and mtime). */
  stamp: string;
}

export interface ScanProblem {
  /** Relative to the repository root, e.g. `cnn/2/model.onnx`. */
  where: string;
  /** An errno code such as ENOENT or EACCES, or a short word. */
  cause: string;
}

const VERSION = /^[1-9][0-9]{0,8}$/;

const causeOf = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'unreadable';

function linkExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function entries(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true });
}

export function scanRepository(root: string): { files: FoundFile[]; problems: ScanProblem[] } {
  const files: FoundFile[] = [];
  const problems: ScanProblem[] = [];
  let names: Dirent[];
  try {
    names = entries(root);
  } catch (error) {
    return { files, problems: [{ where: '.', cause: causeOf(error) }] };
  }
  for (const nameEntry of names) {
    const name = nameEntry.name;
    if (!isValidModelName(name)) continue;
    let versions: Dirent[];
    try {
      if (!statSync(join(root, name)).isDirectory()) continue;
      versions = entries(join(root, name));
    } catch (error) {
      problems.push({ where: name, cause: causeOf(error) });
      continue;
    }
    for (const versionEntry of versions) {
      if (!VERSION.test(versionEntry.name)) continue;
      const where = `${name}/${versionEntry.name}/${MODEL_FILE}`;
      const path = join(root, name, versionEntry.name, MODEL_FILE);
      try {
        const stat = statSync(path);
        if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOTFILE' });
        files.push({ name, version: Number(versionEntry.name), path, stamp: `${stat.size}:${stat.mtimeMs}` });
      } catch (error) {
        // A version folder without its model yet (being copied in) is normal; a dangling link is not.
        if (causeOf(error) === 'ENOENT' && !linkExists(path)) continue;
        problems.push({ where, cause: causeOf(error) });
      }
    }
  }
  return { files, problems };
}
