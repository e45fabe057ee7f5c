/**
 * A run directory: config.json (written once, before training), checkpoint.bin (after every epoch: the
 * run's single source of truth, history included), and views rewritten from the checkpoint after it:
 * history.json and the accuracy and loss plots as SVG and PNG. Every file is written atomically, and
 * the checkpoint first, so a kill at any moment leaves a run that `--resume` continues consistently
 * (a stale view is rewritten from the checkpoint on resume).
 */
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { removeStaleTempFiles, type WriteFile, writeFileAtomic } from '../export/files.ts';
import { writeChart } from './plot.ts';
import type { TrainConfig } from './run-config.ts';

export const epochRecordSchema = z.object({
  epoch: z.number().int().positive(),
  trainLoss: z.number(),
  /** Percent. */
  trainAccuracy: z.number(),
  testLoss: z.number(),
  /** Percent. */
  testAccuracy: z.number(),
  seconds: z.number(),
  imagesPerSecond: z.number(),
  /** Learning rate at the epoch's last step. */
  lr: z.number(),
});
export type EpochRecord = z.infer<typeof epochRecordSchema>;

export const RUN_FILES = {
  config: 'config.json',
  history: 'history.json',
  checkpoint: 'checkpoint.bin',
  /** Plots, written as <name>.svg and <name>.png. */
  accuracyPlot: 'accuracy',
  lossPlot: 'loss',
} as const;

/** Every file a run writes (what `--force` replaces, and nothing else). */
const OWN_FILES = [
  RUN_FILES.config,
  RUN_FILES.history,
  RUN_FILES.checkpoint,
  ...[RUN_FILES.accuracyPlot, RUN_FILES.lossPlot].flatMap((p) => [`${p}.svg`, `${p}.png`]),
];

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export async function writeConfig(dir: string, config: TrainConfig, write: WriteFile = writeFileAtomic): Promise<void> {
  await write(join(dir, RUN_FILES.config), json(config));
}

async function readJson<T>(dir: string, file: string): Promise<T> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${dir} is not a run directory (no ${file})` : `cannot read ${path}: ${code}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${path} is not valid JSON`);
  }
}

export const readConfig = (dir: string) => readJson<TrainConfig>(dir, RUN_FILES.config);
export const readHistory = (dir: string) => readJson<EpochRecord[]>(dir, RUN_FILES.history);

/** The views of a run's history: history.json and the two plots, rewritten after every checkpoint. */
export async function writeHistory(
  dir: string,
  label: string,
  history: EpochRecord[],
  write: WriteFile = writeFileAtomic,
): Promise<void> {
  await write(join(dir, RUN_FILES.history), json(history));
  await writeChart(
    dir,
    RUN_FILES.accuracyPlot,
    {
      title: `${label}: test accuracy`,
      xLabel: 'Epoch',
      yLabel: 'Accuracy (%)',
      zoomY: true,
      series: [{ name: 'test', points: history.map((h) => [h.epoch, h.testAccuracy]) }],
    },
    write,
  );
  await writeChart(
    dir,
    RUN_FILES.lossPlot,
    {
      title: `${label}: loss`,
      xLabel: 'Epoch',
      yLabel: 'Cross-entropy',
      series: [
        { name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) },
        { name: 'test', points: history.map((h) => [h.epoch, h.testLoss]) },
      ],
    },
    write,
  );
}

/**
 * Make `dir` ready for a new run: created when missing, used when empty. A directory that holds
 * anything is refused unless `overwrite`, which removes the files of the run there (and only those).
 */
export async function prepareRunDir(dir: string, overwrite = false): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    await mkdir(dir, { recursive: true });
    return;
  }
  if (!info.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
  await removeStaleTempFiles(dir);
  if ((await readdir(dir)).length === 0) return;
  if (!overwrite) throw new Error(`${dir} already holds files (another run?); choose another --out or pass --force`);
  await Promise.all(OWN_FILES.map((file) => rm(join(dir, file), { force: true })));
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

/**
 * A new, empty run directory `<parent>/<timestamp>`, claimed atomically (mkdir fails when it exists), so
 * two runs started in the same second get `<timestamp>` and `<timestamp>-2`.
 */
export async function newRunDir(parent: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  const base = join(parent, timestamp());
  for (let n = 1; ; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      await mkdir(dir);
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
