/** The suite's guard over the user's runs/ and models/ (test/helpers/user-files-guard.ts) sees every kind of change. */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import config from '../vitest.config.ts';
import { changedPaths, snapshotTree } from './helpers/user-files-guard.ts';

describe('user files guard', () => {
  it('runs around every test file', () => {
    expect(config.test?.setupFiles).toContain('test/helpers/user-files-guard.ts');
  });

  it('notices an overwritten, added or removed file, down nested folders', () => {
    const root = mkdtempSync(join(tmpdir(), 'guard-'));
    mkdirSync(join(root, 'start', 'cnn'), { recursive: true });
    const model = join(root, 'start', 'cnn', 'checkpoint.bin');
    writeFileSync(model, 'a 97.6% model');
    writeFileSync(join(root, 'keep.txt'), 'x');
    const before = snapshotTree(root);
    expect(changedPaths(before, snapshotTree(root))).toEqual([]);

    writeFileSync(model, 'a 64% model!'); // same name, new content
    utimesSync(model, 1, 1);
    expect(changedPaths(before, snapshotTree(root))).toEqual([model]);
    writeFileSync(join(root, 'start', 'cnn', 'history.json'), '[]');
    rmSync(join(root, 'keep.txt'));
    expect(changedPaths(before, snapshotTree(root))).toEqual(
      [model, join(root, 'keep.txt'), join(root, 'start', 'cnn'), join(root, 'start', 'cnn', 'history.json')].sort(),
    );
  });
});
