/**
 * vitest setup file: no test file may touch the user's runs/ or models/ (a test once overwrote a user's
 * trained model through `npm start`'s default run directory). Every entry's size and mtime under them
 * is recorded before each test file and compared after it; any difference fails that file, naming the
 * paths. (A globalSetup teardown cannot do it: vitest logs its error but still exits 0.)
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** The user's folders, relative to the repository root. */
export const USER_DIRS = ['runs', 'models'];

/** path → "size mtime" of every entry under `root` (empty when it does not exist). */
export function snapshotTree(root: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      const info = statSync(path, { throwIfNoEntry: false });
      if (!info) continue;
      entries.set(path, `${info.size} ${info.mtimeMs}`);
      if (info.isDirectory()) walk(path);
    }
  };
  walk(root);
  return entries;
}

/** Paths added, removed or changed between two snapshots. */
export function changedPaths(before: Map<string, string>, after: Map<string, string>): string[] {
  const paths = new Set([...before.keys(), ...after.keys()]);
  return [...paths].filter((p) => before.get(p) !== after.get(p)).sort();
}

const snapshotUserDirs = () => new Map(USER_DIRS.flatMap((dir) => [...snapshotTree(join(ROOT, dir))]));

let before = new Map<string, string>();
beforeAll(() => {
  before = snapshotUserDirs();
});
afterAll(() => {
  const changed = changedPaths(before, snapshotUserDirs());
  if (changed.length > 0)
    throw new Error(
      `this test file changed the user's files (tests must write only in temp dirs): ${changed.join(', ')}`,
    );
});
