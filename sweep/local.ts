/**
 * Run a sweep's trials on this machine, `parallel` train processes at a time (each with `threads`
 * threads: the cores split between them). Finished trials are skipped and interrupted ones resumed, so
 * rerunning a killed sweep finishes it.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Trial } from './expand.ts';
import { metricSummary } from './leaderboard.ts';
import { startTrial, trialTrainArgs } from './run-trial.ts';
import { SWEEP_FILES, trialState } from './sweep-dir.ts';

export type TrialOutcome = 'skipped' | 'trained' | 'resumed' | 'failed' | 'stopped';

export interface RunTrialsOptions {
  /** The sweep's folder (opened with openSweepDir). */
  dir: string;
  trials: Trial[];
  parallel: number;
  threads: number;
  /** Progress lines: one when a trial starts and one when it ends. */
  print: (line: string) => void;
  /** Train's own output: a log file per trial by default. */
  output?: (trial: Trial) => (line: string) => void;
  /** Stops new trials and the running ones (their checkpoints let the next run resume them). */
  signal?: AbortSignal;
}

/** A trial's log, appended to across resumes; closed when its process ends. */
function logFile(dir: string, trial: Trial) {
  const stream = createWriteStream(join(dir, SWEEP_FILES.logs, `${trial.name}.log`), { flags: 'a' });
  return { write: (line: string) => void stream.write(`${line}\n`), close: () => void stream.end() };
}

export async function runTrials(options: RunTrialsOptions): Promise<Map<number, TrialOutcome>> {
  const { dir, trials, print, signal } = options;
  await mkdir(join(dir, SWEEP_FILES.logs), { recursive: true });
  const outcomes = new Map<number, TrialOutcome>();
  const queue = [...trials];

  async function run(trial: Trial): Promise<TrialOutcome> {
    const trialDir = join(dir, trial.name);
    const state = await trialState(trialDir, trial);
    if (state === 'finished') {
      print(`${trial.name} finished earlier: skipped`);
      return 'skipped';
    }
    const args = trialTrainArgs(trial, state, trialDir, options.threads);
    print(`${trial.name} ${state === 'started' ? 'resuming' : 'starting'}: train ${args.join(' ')}`);
    const log = options.output ? { write: options.output(trial), close: () => {} } : logFile(dir, trial);
    const { child, done } = startTrial(args, log.write);
    const stop = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', stop);
    const { code, metrics } = await done;
    signal?.removeEventListener('abort', stop);
    log.close();
    if (signal?.aborted) return 'stopped';
    if (code !== 0) {
      const where = options.output ? '' : `; its output: ${join(dir, SWEEP_FILES.logs, `${trial.name}.log`)}`;
      print(`${trial.name} failed (exit ${code})${where}`);
      return 'failed';
    }
    print(`${trial.name} done: ${metricSummary(metrics)}`);
    return state === 'started' ? 'resumed' : 'trained';
  }

  async function worker(): Promise<void> {
    for (let trial = queue.shift(); trial && !signal?.aborted; trial = queue.shift())
      outcomes.set(trial.index, await run(trial));
  }
  // No more processes than trials to run (a --parallel of 10⁸ had made 10⁸ workers).
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, queue.length)) }, worker));
  return outcomes;
}
