/** readRegularFileStamped: only a regular file under the cap is read, through the descriptor that was checked. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readRegularFileDigest, readRegularFileStamped } from '../node/regular-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'regular-file-'));

it('reads a regular file (through a link too) and gives its stamp; a known stamp skips the read', async () => {
  writeFileSync(join(dir, 'plain'), 'hello');
  symlinkSync(join(dir, 'plain'), join(dir, 'link'));
  const read = await readRegularFileStamped(join(dir, 'link'), 100);
  expect(read.bytes?.toString()).toBe('hello');
  expect(read.stamp).toMatch(/^5:/);
  const again = await readRegularFileStamped(join(dir, 'plain'), 100, (stamp) => stamp === read.stamp);
  expect(again.bytes).toBeUndefined();
  expect(again.stamp).toBe(read.stamp);
  // The file opened is the link's target, told by device and inode (what a caller compares with where the
  // path leads after it checked it).
  const target = statSync(join(dir, 'plain'));
  expect(read.file).toEqual({ dev: target.dev, ino: target.ino });
});

it('a copy that keeps size and mtime (cp -p, tar) gets another stamp', async () => {
  const when = new Date('2026-01-01T00:00:00Z');
  writeFileSync(join(dir, 'one'), 'aaaaa');
  utimesSync(join(dir, 'one'), when, when);
  const before = await readRegularFileStamped(join(dir, 'one'), 100);
  writeFileSync(join(dir, 'two'), 'bbbbb');
  utimesSync(join(dir, 'two'), when, when);
  renameSync(join(dir, 'two'), join(dir, 'one'));
  expect(statSync(join(dir, 'one')).mtime).toEqual(when);
  expect((await readRegularFileStamped(join(dir, 'one'), 100)).stamp).not.toBe(before.stamp);
});

it('refuses a FIFO and /dev/zero at once, unread, and a file over the cap', async () => {
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  symlinkSync('/dev/zero', join(dir, 'zero'));
  writeFileSync(join(dir, 'big'), Buffer.alloc(101));
  await expect(readRegularFileStamped(join(dir, 'fifo'), 100)).rejects.toMatchObject({ code: 'ENOTFILE' });
  await expect(readRegularFileStamped(join(dir, 'zero'), 100)).rejects.toMatchObject({ code: 'ENOTFILE' });
  await expect(readRegularFileStamped(dir, 100)).rejects.toMatchObject({ code: 'ENOTFILE' });
  await expect(readRegularFileStamped(join(dir, 'big'), 100)).rejects.toMatchObject({ code: 'EFBIG' });
  await expect(readRegularFileStamped(join(dir, 'missing'), 100)).rejects.toMatchObject({ code: 'ENOENT' });
});

it('readRegularFileDigest: the digest of the bytes, a few MiB a read, with the bytes or without, and the same refusals', async () => {
  const bytes = Buffer.from(Uint8Array.from({ length: 9 * 1024 * 1024 + 3 }, (_, i) => (i * 31) & 255));
  writeFileSync(join(dir, 'large'), bytes);
  const digest = createHash('sha256').update(bytes).digest('hex');
  expect((await readRegularFileDigest(join(dir, 'large'), bytes.length, false)).sha256).toBe(digest);
  const kept = await readRegularFileDigest(join(dir, 'large'), bytes.length, true);
  expect(kept.sha256).toBe(digest);
  expect(kept.bytes?.equals(bytes)).toBe(true);
  writeFileSync(join(dir, 'empty'), '');
  expect((await readRegularFileDigest(join(dir, 'empty'), 10, false)).sha256).toBe(createHash('sha256').digest('hex'));
  expect((await readRegularFileDigest(join(dir, 'empty'), 10, true)).sha256).toBe(createHash('sha256').digest('hex'));
  await expect(readRegularFileDigest(join(dir, 'large'), bytes.length - 1, false)).rejects.toMatchObject({
    code: 'EFBIG',
  });
  execFileSync('mkfifo', [join(dir, 'fifo2')]);
  await expect(readRegularFileDigest(join(dir, 'fifo2'), 100, true)).rejects.toMatchObject({ code: 'ENOTFILE' });
});

it("readRegularFileDigest: a 512 MiB file's digest never holds more than a few MiB of it at once", async () => {
  // What it holds at once bounds each hash call, which runs on the event loop (a 512 MiB model hashed in one
  // call held every request ~0.3 s). A sparse file: 512 MiB read as zeros, none of them on disk.
  const path = join(dir, 'huge');
  writeFileSync(path, '');
  truncateSync(path, 512 * 1024 * 1024);
  let peakBuffers = 0;
  const before = process.memoryUsage().arrayBuffers;
  let spinning = true;
  const sample = () => {
    peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers - before);
    if (spinning) setImmediate(sample);
  };
  setImmediate(sample);
  const { sha256, bytes } = await readRegularFileDigest(path, 512 * 1024 * 1024, false);
  spinning = false;
  // `head -c 536870912 /dev/zero | sha256sum`
  expect(sha256).toBe('9acca8e8c22201155389f65abbf6bc9723edc7384ead80503839f49dcc56d767');
  expect(bytes).toBeUndefined();
  // Sampled every turn of the loop: with the whole file read at once, 512 MiB.
  expect(peakBuffers).toBeLessThan(64 * 1024 * 1024);
}, 60_000);
