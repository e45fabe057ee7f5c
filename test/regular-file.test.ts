/** readRegularFileStamped: only a regular file under the cap is read, through the descriptor that was checked. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readRegularFileStamped } from '../node/regular-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'regular-file-'));

it('reads a regular file (through a link too) and gives its stamp; a known stamp skips the read', async () => {
  writeFileSync(join(dir, 'plain'), 'hello');
  symlinkSync(join(dir, 'plain'), join(dir, 'link'));
  const read = await readRegularFileStamped(join(dir, 'link'), 100);
  expect(read.bytes?.toString()).toBe('hello');
  expect(read.stamp).toMatch(/^5:/);
  const again = await readRegularFileStamped(join(dir, 'plain'), 100, (stamp) => stamp === read.stamp);
  expect(again).toEqual({ stamp: read.stamp });
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
