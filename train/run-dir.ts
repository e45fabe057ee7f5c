/**
 * A run directory: config.json, history.json, checkpoint.bin (after every epoch), and the accuracy
 * and loss plots as SVG and PNG. Every file is written atomically.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../export/files.ts';
import { writeChart } from './plot.ts';
import type { TrainConfig } from './run-config.ts';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  /** Percent. */
  trainAccuracy: number;
  testLoss: number;
  /** Percent. */
  testAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
  /** Learning rate at the epoch's last step. */
  lr: number;
}

export const RUN_FILES = {
  config: 'config.json',
  history: 'history.json',
  checkpoint: 'checkpoint.bin',
  /** Plots, written as <name>.svg and <name>.png. */
  accuracyPlot: 'accuracy',
  lossPlot: 'loss',
} as const;

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export async function writeConfig(dir: string, config: TrainConfig): Promise<void> {
  await writeFileAtomic(join(dir, RUN_FILES.config), json(config));
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

/** history.json and the two plots, rewritten after every epoch. */
export async function writeHistory(dir: string, label: string, history: EpochRecord[]): Promise<void> {
  await writeFileAtomic(join(dir, RUN_FILES.history), json(history));
  await writeChart(dir, RUN_FILES.accuracyPlot, {
    title: `${label}: test accuracy`,
    xLabel: 'Epoch',
    yLabel: 'Accuracy (%)',
    zoomY: true,
    series: [{ name: 'test', points: history.map((h) => [h.epoch, h.testAccuracy]) }],
  });
  await writeChart(dir, RUN_FILES.lossPlot, {
    title: `${label}: loss`,
    xLabel: 'Epoch',
    yLabel: 'Cross-entropy',
    series: [
      { name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) },
      { name: 'test', points: history.map((h) => [h.epoch, h.testLoss]) },
    ],
  });
}
