/**
 * A sweep's trials ranked by final held-out accuracy (the test set's, or the validation split's when the
 * trials run with --validation; ties: less training time), read from their run
 * directories: leaderboard.md and .json, the accuracy and loss plots of `npm run compare` (compare/), and
 * the best trial's flags as a ready `npm run train` command.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../node/files.ts';
import { writeComparison } from '../train/compare-runs.ts';
import {
  bestEpoch,
  commonSet,
  type EpochRecord,
  type EvaluationSet,
  evaluationOf,
  readConfig,
  readHistory,
} from '../train/run-dir.ts';
import type { Trial } from './expand.ts';
import { commandLine, FLAGS, trainArgs } from './flags.ts';
import { SWEEP_FILES } from './sweep-dir.ts';

export interface LeaderboardRow {
  /** 1 for the best finished trial; absent for trials not finished. */
  rank?: number;
  trial: string;
  status: 'finished' | 'unfinished' | 'not run';
  point: Trial['point'];
  /** The set evaluated after each epoch: the test set, or the validation split (--validation). */
  evaluatedOn?: EvaluationSet;
  /** Percent, as in history.json: the last epoch's, and the best epoch's. */
  accuracy?: number;
  bestAccuracy?: number;
  bestEpoch?: number;
  loss?: number;
  trainSeconds?: number;
  /** `npm run train -- …` with the trial's flags. */
  command: string;
  /** For a trial with --validation: the same command without it (the held-out images back in training), tested. */
  finalCommand?: string;
  history: EpochRecord[];
}

export const trainCommand = (trial: Trial) => `npm run train -- ${commandLine(trainArgs(trial.flags))}`;

/** `test_accuracy=0.9921 train_seconds=17.4` (or `validation_accuracy=…`): a trial's metric lines, on one line. */
export const metricSummary = (metrics: Record<string, number>) =>
  Object.entries(metrics)
    .filter(([name]) => name === 'test_accuracy' || name === 'validation_accuracy' || name === 'train_seconds')
    .map(([name, value]) => `${name}=${value}`)
    .join(' ') || 'no metrics printed';

async function rowFor(dir: string, trial: Trial): Promise<LeaderboardRow> {
  const { validation: _, ...onEveryImage } = trial.flags;
  const row = {
    trial: trial.name,
    point: trial.point,
    command: trainCommand(trial),
    ...(trial.flags.validation === undefined ? {} : { finalCommand: trainCommand({ ...trial, flags: onEveryImage }) }),
    history: [],
  };
  const runDir = join(dir, trial.name);
  const config = await readConfig(runDir).catch(() => undefined);
  if (!config) return { ...row, status: 'not run' };
  const history = await readHistory(runDir).catch(() => [] as EpochRecord[]);
  const last = history.at(-1);
  const best = bestEpoch(history);
  if (!last || !best) return { ...row, status: 'unfinished' };
  const final = evaluationOf(last);
  return {
    ...row,
    status: history.length >= config.epochs ? 'finished' : 'unfinished',
    history,
    evaluatedOn: final.set,
    accuracy: final.accuracy,
    bestAccuracy: evaluationOf(best).accuracy,
    bestEpoch: best.epoch,
    loss: final.loss,
    trainSeconds: history.reduce((s, h) => s + h.seconds, 0),
  };
}

/** Every trial's row: finished ones ranked, then the rest in trial order. */
export async function readLeaderboard(dir: string, trials: Trial[]): Promise<LeaderboardRow[]> {
  const rows = await Promise.all(trials.map((trial) => rowFor(dir, trial)));
  const finished = rows
    .filter((r) => r.status === 'finished')
    .sort(
      (a, b) =>
        (b.accuracy ?? 0) - (a.accuracy ?? 0) ||
        (a.trainSeconds ?? 0) - (b.trainSeconds ?? 0) ||
        a.trial.localeCompare(b.trial),
    )
    .map((r, i) => ({ ...r, rank: i + 1 }));
  return [...finished, ...rows.filter((r) => r.status !== 'finished')];
}

const pct = (n?: number) => (n === undefined ? '–' : `${n.toFixed(2)}%`);
/** As `npm run compare` writes times: seconds under two minutes, minutes above. */
const duration = (seconds: number) => (seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`);

export function leaderboardTable(rows: LeaderboardRow[]): string {
  const searched = FLAGS.filter((flag) => rows.some((r) => r.point[flag] !== undefined));
  const set = commonSet(rows.flatMap((r) => (r.evaluatedOn ? [r.evaluatedOn] : [])));
  const which = (r: LeaderboardRow) => (set === 'held-out' && r.evaluatedOn ? ` (${r.evaluatedOn})` : '');
  const head = [
    'rank',
    'trial',
    ...searched,
    `${set} accuracy`,
    'best (epoch)',
    `${set} loss`,
    'training time',
    'status',
  ];
  const body = rows.map((r) => [
    r.rank === undefined ? '–' : String(r.rank),
    r.trial,
    ...searched.map((flag) => String(r.point[flag] ?? '–')),
    `${pct(r.accuracy)}${which(r)}`,
    r.bestAccuracy === undefined ? '–' : `${pct(r.bestAccuracy)} (${r.bestEpoch})`,
    r.loss === undefined ? '–' : `${r.loss.toFixed(4)}${which(r)}`,
    r.trainSeconds === undefined ? '–' : duration(r.trainSeconds),
    r.status,
  ]);
  return [
    `| ${head.join(' | ')} |`,
    // Numbers right-aligned; the trial, its flags and the status left.
    `|${head.map((_, i) => (i < 2 + searched.length || i === head.length - 1 ? '---' : '---:')).join('|')}|`,
    ...body.map((cells) => `| ${cells.join(' | ')} |`),
  ].join('\n');
}

/** leaderboard.md/.json and the compare plots; returns the table and the best trial's command. */
export async function writeLeaderboard(dir: string, name: string, trials: Trial[]) {
  const rows = await readLeaderboard(dir, trials);
  const table = leaderboardTable(rows);
  const best = rows[0]?.rank === 1 ? rows[0] : undefined;
  const bestLine = best
    ? `Best: ${best.trial}, ${pct(best.accuracy)} ${best.evaluatedOn ?? 'test'} accuracy: \`${best.command}\`${best.finalCommand ? `; then without --validation, tested once: \`${best.finalCommand}\`` : ''}`
    : 'No trial finished yet.';
  await writeFileAtomic(join(dir, `${SWEEP_FILES.leaderboard}.md`), `# Sweep ${name}\n\n${table}\n\n${bestLine}\n`);
  const json = rows.map(({ history: _, ...row }) => row);
  await writeFileAtomic(join(dir, `${SWEEP_FILES.leaderboard}.json`), `${JSON.stringify(json, null, 2)}\n`);
  const runs = rows.filter((r) => r.history.length > 0).map((r) => ({ label: r.trial, history: r.history }));
  if (runs.length > 0) await writeComparison(join(dir, SWEEP_FILES.compare), runs, `sweep ${name}`);
  return { table, best };
}
