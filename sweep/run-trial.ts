/**
 * One trial as one `npm run train` process: `--out` for a new trial, `--resume` for one a kill interrupted
 * (train continues from its last checkpoint), nothing for a finished one. The trial's result is read from
 * train's `name=value` lines, as Katib's StdOut collector reads them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TRAINING_NODE_FLAGS } from '../node/training-flags.ts';
import type { Trial } from './expand.ts';
import { trainArgs } from './flags.ts';
import type { TrialState } from './sweep-dir.ts';

const TRAIN_SCRIPT = fileURLToPath(new URL('../train/cli/train.ts', import.meta.url));

/** `name=value` with a number, the form Katib's StdOut collector accepts. */
const METRIC_LINE = /^([A-Za-z_][\w-]*)=([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)$/;

export function parseMetricLine(line: string): [string, number] | undefined {
  const match = METRIC_LINE.exec(line.trim());
  return match ? [match[1] as string, Number(match[2])] : undefined;
}

/** The train arguments for a trial in `state` (a resumed run keeps its own settings, threads included). */
export function trialTrainArgs(trial: Trial, state: Exclude<TrialState, 'finished'>, dir: string, threads: number) {
  if (state === 'started') return ['--resume', dir];
  const own = trial.flags.threads === undefined ? ['--threads', String(threads)] : [];
  return [...trainArgs(trial.flags), ...own, '--out', dir];
}

export interface TrialProcess {
  child: ChildProcess;
  /** Exit code (a signal counts as failure) and the metrics train printed. */
  done: Promise<{ code: number; metrics: Record<string, number> }>;
}

/** Start train with `args`; every output line goes to `onLine` (a log file, or stdout in a pod). */
export function startTrial(args: string[], onLine: (line: string) => void): TrialProcess {
  const child = spawn(process.execPath, [...TRAINING_NODE_FLAGS, '--import', 'tsx', TRAIN_SCRIPT, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: '1' }, // no progress bar: the output is a log
  });
  const metrics: Record<string, number> = {};
  const stdout = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  stdout.on('line', (line) => {
    const metric = parseMetricLine(line);
    if (metric) metrics[metric[0]] = metric[1];
    onLine(line);
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', onLine);
  const closed = new Promise<void>((resolve) => stdout.on('close', resolve));
  const done = new Promise<{ code: number; metrics: Record<string, number> }>((resolve) => {
    child.on('error', () => resolve({ code: 1, metrics }));
    child.on('close', (code) => void closed.then(() => resolve({ code: code ?? 1, metrics })));
  });
  return { child, done };
}
