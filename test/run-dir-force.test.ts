/**
 * `--out DIR --force` on a folder that holds no run overwrote the user's config.json and loss.png, and
 * without --force a foreign `*.tmp` was deleted before the refusal. Now nothing is removed before the
 * decision, a folder that is not a run is refused even with --force, and only the run's files go.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { main } from '../train/cli/train.ts';
import { prepareRunDir } from '../train/run-dir.ts';
import { failingCli } from './helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'force-'));
const runConfig: TrainConfig = { ...TUTORIAL_RECIPE, model: 'cnn', epochs: 1 };

/** Every file's name and bytes, to show a refusal changed nothing. */
const contents = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map((name) => [name, statSync(join(dir, name)).isFile() ? readFileSync(join(dir, name), 'utf8') : 'dir']);

/** A user's folder: their own config.json and loss.png, a temp file shaped like ours and one of theirs. */
function usersFolder(): string {
  const dir = tmp();
  writeFileSync(join(dir, 'config.json'), '{"theme": "dark"}');
  writeFileSync(join(dir, 'loss.png'), 'my plot');
  writeFileSync(join(dir, 'draft.999999.cafebabe.tmp'), 'a foreign temp file');
  return dir;
}

describe('--out with --force', () => {
  it('refuses a folder that holds no run, touching nothing, with or without --force', async () => {
    for (const overwrite of [false, true]) {
      const dir = usersFolder();
      const before = contents(dir);
      await expect(prepareRunDir(dir, overwrite)).rejects.toThrow(
        overwrite
          ? `--force replaces only a run's own files, and ${dir} holds no run (its config.json is not a run's); choose another --out`
          : `${dir} already holds files (another run?); choose another --out or pass --force`,
      );
      expect(contents(dir)).toEqual(before);
    }
    const noConfig = tmp();
    writeFileSync(join(noConfig, 'loss.png'), 'my plot');
    await expect(prepareRunDir(noConfig, true)).rejects.toThrow(/holds no run \(no config\.json\)/);
    expect(contents(noConfig)).toEqual([['loss.png', 'my plot']]);
  });

  it("replaces a run's own files and its killed writes' temp files, and nothing else", async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(runConfig));
    writeFileSync(join(dir, 'checkpoint.bin'), 'old');
    writeFileSync(join(dir, 'checkpoint.bin.999999.0123abcd.tmp'), 'torn'); // pid 999999: not running
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    writeFileSync(join(dir, 'notes.txt.999999.0123abcd.tmp'), 'mine too');
    await prepareRunDir(dir, true);
    expect(contents(dir)).toEqual([
      ['notes.txt', 'mine'],
      ['notes.txt.999999.0123abcd.tmp', 'mine too'],
    ]);
  });

  it("refuses a run whose own file names a directory (rm would fail half-way or take the user's folder)", async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(runConfig));
    mkdirSync(join(dir, 'loss.png'));
    writeFileSync(join(dir, 'checkpoint.bin'), 'old');
    await expect(prepareRunDir(dir, true)).rejects.toThrow(/holds a directory named loss\.png; choose another --out$/);
    expect(contents(dir)).toEqual([
      ['checkpoint.bin', 'old'],
      ['config.json', JSON.stringify(runConfig)],
      ['loss.png', 'dir'],
    ]);
  });

  it('npm run train says so in one line and exits 1', async () => {
    const dir = usersFolder();
    const before = contents(dir);
    const started = performance.now();
    const stderr = await failingCli(main, '--epochs', '1', '--limit', '64', '--out', dir, '--force');
    expect(stderr).toBe(
      `error: --force replaces only a run's own files, and ${dir} holds no run (its config.json is not a run's); choose another --out`,
    );
    expect(contents(dir)).toEqual(before);
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 60_000);
});
