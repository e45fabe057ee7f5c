/** What a bench result file records about the code it ran: the commit, and whether tracked files differed. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { codeRevision } from '../bench/machine.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

it('names the commit, says when tracked files were changed, and nothing outside a checkout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-code-'));
  expect(codeRevision(dir)).toBeUndefined();
  git(dir, 'init', '-q');
  writeFileSync(join(dir, 'a.txt'), 'one');
  git(dir, 'add', 'a.txt');
  git(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'one');
  const head = git(dir, 'rev-parse', 'HEAD');
  expect(codeRevision(dir)).toBe(head.slice(0, 12));
  writeFileSync(join(dir, 'untracked.txt'), 'not part of the code');
  expect(codeRevision(dir)).toBe(head.slice(0, 12));
  writeFileSync(join(dir, 'a.txt'), 'two');
  expect(codeRevision(dir)).toBe(`${head.slice(0, 12)} with uncommitted changes`);
});
