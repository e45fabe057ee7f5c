/**
 * Files that training reads (config.json, history.json, checkpoint.bin, the autotune cache) may be
 * anything: a FIFO hung `train` forever, a directory or read-only cache aborted it with a raw EISDIR or
 * EROFS. Each is now read only as a capped regular file, and an unusable autotune cache costs one notice.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZOO } from '../core/model/zoo/index.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { exportRun } from '../export/export-run.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { readRegularFile } from '../node/regular-file.ts';
import { autotuneRules } from '../train/autotune/autotune.ts';
import { CACHE_FILE } from '../train/autotune/cache.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { trainRun } from '../train/loop.ts';
import { readConfig, readHistory } from '../train/run-dir.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'untrusted-'));
const fifo = (path: string) => execFileSync('mkfifo', [path]);
const linux = process.platform === 'linux';
const plant = (cacheDir: string, fault: () => void) => {
  fault();
  return cacheDir;
};

describe('reading a file that may be anything', () => {
  it.skipIf(!linux)('refuses a FIFO, a /dev/zero link and a directory at once, and a huge file unread', async () => {
    const dir = tmp();
    fifo(join(dir, 'fifo'));
    symlinkSync('/dev/zero', join(dir, 'zero'));
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'huge'), '');
    truncateSync(join(dir, 'huge'), 4 * 1024 ** 3); // sparse: 4 GiB claimed, nothing allocated
    const started = performance.now();
    await expect(readRegularFile(join(dir, 'fifo'), 1024)).rejects.toThrow(/fifo is a FIFO, not a regular file$/);
    await expect(readRegularFile(join(dir, 'zero'), 1024)).rejects.toThrow(/is a character device, not a regular/);
    await expect(readRegularFile(join(dir, 'folder'), 1024)).rejects.toThrow(/is a directory, not a regular file/);
    await expect(readRegularFile(join(dir, 'huge'), 1024 ** 2)).rejects.toThrow(/huge is larger than 1 MiB$/);
    expect(performance.now() - started).toBeLessThan(2000);
    writeFileSync(join(dir, 'plain'), 'ok');
    expect((await readRegularFile(join(dir, 'plain'), 2)).toString()).toBe('ok');
  });

  it.skipIf(!linux)(
    "a run's config, history or checkpoint as a FIFO fails in one line instead of hanging",
    async () => {
      const dir = tmp();
      for (const file of ['config.json', 'history.json', 'checkpoint.bin']) fifo(join(dir, file));
      await expect(readConfig(dir)).rejects.toThrow(
        `cannot read ${join(dir, 'config.json')}: a FIFO, not a regular file`,
      );
      await expect(readHistory(dir)).rejects.toThrow(/history\.json: a FIFO, not a regular file$/);
      await expect(loadCheckpoint(join(dir, 'checkpoint.bin'))).rejects.toThrow(
        /^cannot read checkpoint .*checkpoint\.bin: a FIFO, not a regular file$/,
      );
    },
  );
});

describe('an unusable autotune cache', () => {
  /** Autotune the simple CNN (4 shapes) with `cacheDir`; the notices that are not measurements. */
  async function tune(cacheDir: string) {
    const notices: string[] = [];
    const { choices } = await autotuneRules(ZOO.cnn.build(), { batch: 2, cacheDir, onNotice: (m) => notices.push(m) });
    expect(choices.size).toBe(4); // measured, and used
    return notices.filter((m) => !m.includes('→'));
  }

  it.skipIf(!linux)(
    'costs one notice and no abort: a FIFO, a directory or /dev/zero as autotune.json, a file as the folder',
    async () => {
      // Each plants its fault in a fresh folder and returns the cache folder to use.
      const cases: [string, (dir: string) => string, RegExp][] = [
        ['a FIFO', (dir) => plant(dir, () => fifo(join(dir, CACHE_FILE))), /\(a FIFO, not a regular file\)/],
        ['a directory', (dir) => plant(dir, () => mkdirSync(join(dir, CACHE_FILE))), /\(a directory, not a regular/],
        ['/dev/zero', (dir) => plant(dir, () => symlinkSync('/dev/zero', join(dir, CACHE_FILE))), /a character device/],
        ['a file as the folder', (dir) => plant(join(dir, 'f'), () => writeFileSync(join(dir, 'f'), 'x')), /ENOTDIR/],
      ];
      for (const [what, setUp, reason] of cases) {
        const started = performance.now();
        const notices = await tune(setUp(tmp()));
        expect(notices, what).toHaveLength(1);
        expect(notices[0], what).toMatch(/^autotune: cannot use the cache .*autotune\.json /);
        expect(notices[0], what).toMatch(reason);
        expect(notices[0], what).toMatch(/training with the choices just measured, unsaved$/);
        expect(performance.now() - started, what).toBeLessThan(30_000);
      }
    },
    120_000,
  );

  it.skipIf(!existsSync('/sys/kernel'))(
    'a cache folder that cannot be created (EPERM under /sys) is one notice',
    async () => {
      const cacheDir = '/sys/mnist-onnx-cnn-test-cache';
      const notices = await tune(cacheDir);
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatch(/^autotune: cannot use the cache \/sys\/.*\((EPERM|EACCES|EROFS)\)/);
      expect(existsSync(cacheDir)).toBe(false);
    },
    60_000,
  );

  it.skipIf(!linux)(
    'leaves a FIFO in its place untouched (never replaced by our file)',
    async () => {
      const dir = tmp();
      fifo(join(dir, CACHE_FILE));
      await tune(dir);
      expect(readdirSync(dir)).toEqual([CACHE_FILE]);
      expect(
        execFileSync('stat', ['-c', '%F', join(dir, CACHE_FILE)])
          .toString()
          .trim(),
      ).toBe('fifo');
    },
    60_000,
  );
});

describe('export beside files that are not ours', () => {
  it.skipIf(!linux)(
    "skips a FIFO where an earlier version's model.onnx should be, and leaves a foreign temp file alone",
    async () => {
      const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
      const run = tmp();
      const config = { ...TUTORIAL_RECIPE, model: 'cnn' as const, epochs: 1, batchSize: 32 };
      await trainRun({ config, dir: run, data: { train: take(train, 64), test: take(test, 64) as Dataset } });
      const out = tmp();
      mkdirSync(join(out, 'cnn', '1'), { recursive: true });
      fifo(join(out, 'cnn', '1', 'model.onnx'));
      mkdirSync(join(out, 'cnn', '2'));
      writeFileSync(join(out, 'cnn', '2', 'notes.999999.cafebabe.tmp'), 'mine');
      const report = await exportRun({ run, out, version: 2, test: take(test, 100) as Dataset });
      expect(report.path).toBe(join(out, 'cnn', '2', 'model.onnx'));
      expect(readdirSync(join(out, 'cnn', '2')).sort()).toEqual(['model.onnx', 'notes.999999.cafebabe.tmp']);
    },
    60_000,
  );
});

it('refuses a history of more epochs than a run may have (compare had taken 1.7 GB over four hand-made ones)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'long-history-'));
  const record = { epoch: 1, trainLoss: 1, trainAccuracy: 50, testLoss: 1, testAccuracy: 50, seconds: 1, lr: 0.01 };
  writeFileSync(
    join(dir, 'history.json'),
    JSON.stringify(Array.from({ length: 10_001 }, (_, i) => ({ ...record, epoch: i + 1 }))),
  );
  await expect(readHistory(dir)).rejects.toThrow(/is not a run's history: .*10000/);
  writeFileSync(join(dir, 'history.json'), JSON.stringify([{ ...record, epoch: 100_000_000 }]));
  await expect(readHistory(dir)).rejects.toThrow(/is not a run's history/);
});
