/** What a bench result file records about the code it ran (the commit, the tracked files changed from it) and when. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { codeRevision } from '../bench/machine.ts';
import { utcSpan } from '../bench/machine-report.ts';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

it('names the commit, and the tracked files changed from it, and nothing outside a checkout', () => {
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
  expect(codeRevision(dir)).toBe(`${head.slice(0, 12)} with uncommitted changes to a.txt`);
  for (let i = 0; i < 12; i++) writeFileSync(join(dir, `f${String(i).padStart(2, '0')}.txt`), 'x');
  git(dir, 'add', '.');
  expect(codeRevision(dir)).toBe(
    `${head.slice(0, 12)} with uncommitted changes to a.txt, f00.txt, f01.txt, f02.txt, f03.txt, f04.txt, f05.txt, f06.txt, f07.txt, f08.txt and 4 more`,
  );
});

it('says when a benchmark ran, in UTC, with the end date only when it crossed midnight', () => {
  const at = (iso: string) => new Date(iso);
  expect(utcSpan({ started: at('2026-12-06T12:40:01.5Z'), ended: at('2026-12-06T12:46:33Z') })).toBe(
    '2026-12-06 12:40:01–12:46:33 UTC',
  );
  expect(utcSpan({ started: at('2026-12-05T23:58:00Z'), ended: at('2026-12-06T00:03:10Z') })).toBe(
    '2026-12-05 23:58:00–2026-12-06 00:03:10 UTC',
  );
});
