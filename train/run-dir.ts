/**
 * A run directory: config.json (written once, before training), checkpoint.bin (after every epoch: the
 * run's single source of truth, history included), and views rewritten from the checkpoint after it:
 * history.json and the accuracy and loss plots as SVG and PNG. Every file is written atomically, and
 * the checkpoint first, so a kill at any moment leaves a run that `--resume` continues consistently
 * (a stale view is rewritten from the checkpoint on resume).
 */
import { lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { TrainConfig } from '../core/training/run-config.ts';
import { LIMITS, parseTrainConfig, trainConfigSchema } from '../core/training/run-config-schema.ts';
import { issuesInOneLine } from '../core/zod-issues.ts';
import { isOwnStaleTempFile, removeStaleTempFiles, type WriteFile, writeFileAtomic } from '../node/files.ts';
import { readFailure, readRegularFile } from '../node/regular-file.ts';
import { writeChart } from './plot.ts';

export const epochRecordSchema = z
  .object({
    epoch: z.number().int().positive().max(LIMITS.epochs),
    trainLoss: z.number(),
    /** Percent. */
    trainAccuracy: z.number(),
    /** The test set's loss and accuracy (percent); absent in a run with --validation, which never reads it. */
    testLoss: z.number().optional(),
    testAccuracy: z.number().optional(),
    /** With --validation: the held-out training images' loss and accuracy (percent), instead of the test set's. */
    validationLoss: z.number().optional(),
    validationAccuracy: z.number().optional(),
    /** How many images were held out (--validation N): a resume or export with another N is refused. */
    validationImages: z.number().int().positive().optional(),
    seconds: z.number(),
    imagesPerSecond: z.number(),
    /** Learning rate at the epoch's last step. */
    lr: z.number(),
  })
  .refine((r) => {
    const held = (...values: (number | undefined)[]) => values.filter((v) => v !== undefined).length;
    const [test, validation] = [held(r.testLoss, r.testAccuracy), held(r.validationLoss, r.validationAccuracy)];
    return (test === 2 && validation === 0) || (test === 0 && validation === 2);
  }, "an epoch record holds either the test set's loss and accuracy or the validation set's, and nothing of the other");
export type EpochRecord = z.infer<typeof epochRecordSchema>;

/** Which held-out set a run evaluates after each epoch. */
export type EvaluationSet = 'test' | 'validation';

/** An epoch's evaluation, whichever set it was made on (the schema guarantees exactly one). */
export function evaluationOf(record: EpochRecord): { set: EvaluationSet; loss: number; accuracy: number } {
  if (record.validationAccuracy !== undefined && record.validationLoss !== undefined)
    return { set: 'validation', loss: record.validationLoss, accuracy: record.validationAccuracy };
  return { set: 'test', loss: record.testLoss ?? Number.NaN, accuracy: record.testAccuracy ?? Number.NaN };
}

/**
 * Refuse a config.json that disagrees with the run's history about what was held out (a hand edit):
 * continuing or exporting would train on, or score on, images the other side had.
 */
export function checkHeldOut(
  history: readonly EpochRecord[],
  config: Pick<TrainConfig, 'validation'>,
  dir: string,
): void {
  const [first] = history;
  if (!first) return;
  const set: EvaluationSet = config.validation === undefined ? 'test' : 'validation';
  const recorded = evaluationOf(first).set;
  if (recorded !== set)
    throw new Error(
      `${dir}: the run was evaluated on the ${recorded} set, but its config.json now asks for the ${set} set (was validation edited?)`,
    );
  const other = history.find((h) => h.validationImages !== undefined && h.validationImages !== config.validation);
  if (other)
    throw new Error(
      `${dir}: the run held out ${other.validationImages} training images, but its config.json now says validation ${config.validation} (was it edited?)`,
    );
}

/** What a table's columns are named after: the one set all its rows evaluated, or 'held-out' when they differ. */
export function commonSet(sets: Iterable<EvaluationSet>): EvaluationSet | 'held-out' {
  const distinct = new Set(sets);
  return distinct.size === 0 ? 'test' : distinct.size === 1 ? ([...distinct][0] as EvaluationSet) : 'held-out';
}

/** The epoch with the highest held-out accuracy (the earliest among equals). */
export function bestEpoch(history: readonly EpochRecord[]): EpochRecord | undefined {
  return history.reduce<EpochRecord | undefined>(
    (best, h) => (best === undefined || evaluationOf(h).accuracy > evaluationOf(best).accuracy ? h : best),
    undefined,
  );
}

export const RUN_FILES = {
  config: 'config.json',
  history: 'history.json',
  checkpoint: 'checkpoint.bin',
  /** Plots, written as <name>.svg and <name>.png. */
  accuracyPlot: 'accuracy',
  lossPlot: 'loss',
} as const;

/** Every file a run writes (what `--force` replaces, and nothing else). */
export const OWN_FILES: readonly string[] = [
  RUN_FILES.config,
  RUN_FILES.history,
  RUN_FILES.checkpoint,
  ...[RUN_FILES.accuracyPlot, RUN_FILES.lossPlot].flatMap((p) => [`${p}.svg`, `${p}.png`]),
];

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export async function writeConfig(dir: string, config: TrainConfig, write: WriteFile = writeFileAtomic): Promise<void> {
  await write(join(dir, RUN_FILES.config), json(config));
}

/** Far above what a run writes (a config is ~300 bytes, an epoch's record ~200): a cap, not a limit. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

async function readJson(dir: string, file: string): Promise<unknown> {
  const path = join(dir, file);
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, MAX_JSON_BYTES);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT' ? `${dir} is not a run directory (no ${file})` : `cannot read ${path}: ${readFailure(error)}`,
    );
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`${path} is not valid JSON`);
  }
}

/**
 * The run's config, validated: a hand-edited field fails here in one line that names it. With `strict` (a
 * resume, which trains by it) a key train does not know is refused too, not dropped: a misspelt `"lR"` would
 * otherwise leave the setting it meant unchanged without a word.
 */
export async function readConfig(dir: string, { strict = false }: { strict?: boolean } = {}): Promise<TrainConfig> {
  const path = join(dir, RUN_FILES.config);
  const raw = await readJson(dir, RUN_FILES.config);
  const unknown =
    strict && raw && typeof raw === 'object' && !Array.isArray(raw)
      ? Object.keys(raw).filter((key) => !Object.hasOwn(trainConfigSchema.shape, key))
      : [];
  if (unknown.length > 0)
    throw new Error(
      `${path} is not a valid run config: ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k).slice(0, 60))
        .join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}: not a setting train knows`,
    );
  return parseTrainConfig(raw, path);
}

/** One record per epoch, as many as a run may have: a hand-made history of 50,000 took compare to 1.7 GB. */
const historySchema = z.array(epochRecordSchema).max(LIMITS.epochs);

export async function readHistory(dir: string): Promise<EpochRecord[]> {
  const result = historySchema.safeParse(await readJson(dir, RUN_FILES.history));
  if (!result.success)
    throw new Error(`${join(dir, RUN_FILES.history)} is not a run's history: ${issuesInOneLine(result.error)}`);
  return result.data;
}

/** The views of a run's history: history.json and the two plots, rewritten after every checkpoint. */
export async function writeHistory(
  dir: string,
  label: string,
  history: EpochRecord[],
  write: WriteFile = writeFileAtomic,
): Promise<void> {
  await write(join(dir, RUN_FILES.history), json(history));
  const set = history[0] ? evaluationOf(history[0]).set : 'test';
  await writeChart(
    dir,
    RUN_FILES.accuracyPlot,
    {
      title: `${label}: ${set} accuracy`,
      xLabel: 'Epoch',
      yLabel: 'Accuracy (%)',
      zoomY: true,
      series: [{ name: set, points: history.map((h) => [h.epoch, evaluationOf(h).accuracy]) }],
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
        { name: set, points: history.map((h) => [h.epoch, evaluationOf(h).loss]) },
      ],
    },
    write,
  );
}

/**
 * Make `dir` ready for a new run: created when missing, used when empty. A directory that holds
 * anything is refused unless `overwrite`, which removes the files of the run there (and only those);
 * a directory that holds no run is refused even then. Everything is checked before anything is removed.
 */
export async function prepareRunDir(dir: string, overwrite = false): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    await mkdir(dir, { recursive: true });
    return;
  }
  if (!info.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
  const names = await readdir(dir);
  if (names.some((name) => !isOwnStaleTempFile(name, OWN_FILES))) {
    if (!overwrite) throw new Error(`${dir} already holds files (another run?); choose another --out or pass --force`);
    await checkReplaceableRun(dir, names);
  }
  await removeStaleTempFiles(dir, OWN_FILES);
  await Promise.all(OWN_FILES.map((file) => rm(join(dir, file), { force: true })));
}

/** `--force` replaces a run, never a folder of the user's that happens to hold a config.json or a loss.png. */
async function checkReplaceableRun(dir: string, names: string[]): Promise<void> {
  const refuse = (why: string): never => {
    throw new Error(`--force replaces only a run's own files, and ${dir} ${why}; choose another --out`);
  };
  if (!names.includes(RUN_FILES.config)) refuse(`holds no run (no ${RUN_FILES.config})`);
  await readConfig(dir).catch(() => refuse(`holds no run (its ${RUN_FILES.config} is not a run's)`));
  for (const file of OWN_FILES.filter((f) => names.includes(f))) {
    const entry = await lstat(join(dir, file));
    if (entry.isDirectory()) refuse(`holds a directory named ${file}`);
  }
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
