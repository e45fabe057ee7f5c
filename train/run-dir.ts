/**
 * A run directory: config.json, history.json, checkpoint.bin (after every epoch), accuracy.svg and
 * loss.svg. Every file is written atomically.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../export/files.ts';
import { lineChartSvg } from './plot.ts';
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
  accuracyPlot: 'accuracy.svg',
  lossPlot: 'loss.svg',
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
  const accuracy = await lineChartSvg({
    title: `${label}: test accuracy`,
    xLabel: 'Epoch',
    yLabel: 'Accuracy (%)',
    zoomY: true,
    series: [{ name: 'test', points: history.map((h) => [h.epoch, h.testAccuracy]) }],
  });
  const loss = await lineChartSvg({
    title: `${label}: loss`,
    xLabel: 'Epoch',
    yLabel: 'Cross-entropy',
    series: [
      { name: 'train', points: history.map((h) => [h.epoch, h.trainLoss]) },
      { name: 'test', points: history.map((h) => [h.epoch, h.testLoss]) },
    ],
  });
  await writeFileAtomic(join(dir, RUN_FILES.accuracyPlot), accuracy);
  await writeFileAtomic(join(dir, RUN_FILES.lossPlot), loss);
}
