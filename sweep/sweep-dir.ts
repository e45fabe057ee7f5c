/**
 * A sweep's folder: sweep.json (the trial list it was started with) and one ordinary run directory per
 * trial (trial-000, …). A folder is only ever used for the sweep that made it: one holding anything else,
 * or trials with other flags (the file changed), is refused, so no user's run is touched.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RECIPES, type RecipeName } from '../core/training/recipes.ts';
import type { TrainConfig } from '../core/training/run-config.ts';
import { isOwnStaleTempFile, writeFileAtomic } from '../node/files.ts';
import { OWN_FILES, RUN_FILES, readConfig, readHistory } from '../train/run-dir.ts';
import type { Trial } from './expand.ts';
import { commandLine, FLAGS, type TrialFlags, trainArgs } from './flags.ts';

export const SWEEP_FILES = { manifest: 'sweep.json', logs: 'logs', leaderboard: 'leaderboard', compare: 'compare' };

/** Names a sweep writes at its top level (with writeFileAtomic's temp files beside them). */
const OWN_NAME = /^(trial-\d{3,}|sweep\.json|logs|leaderboard\.(md|json)|compare|katib)(\.\d+\.[0-9a-f]{8}\.tmp)?$/;

interface Manifest {
  name: string;
  trials: { name: string; flags: Trial['flags'] }[];
}

const describe = (trial: Manifest['trials'][number]) => commandLine(trainArgs(trial.flags));

/**
 * Create or reopen `dir` for the sweep `name` with `trials`. The recorded list may be shorter or longer
 * (the budget changed) but must agree trial by trial; then it is rewritten with the current list.
 */
export async function openSweepDir(dir: string, name: string, trials: Trial[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = { name, trials: trials.map((t) => ({ name: t.name, flags: t.flags })) };
  const text = await readFile(join(dir, SWEEP_FILES.manifest), 'utf8').catch(() => undefined);
  if (text === undefined) {
    const foreign = (await readdir(dir)).filter((entry) => !OWN_NAME.test(entry));
    if (foreign.length > 0)
      throw new Error(
        `${dir} holds files that are not this sweep's (${foreign.slice(0, 3).join(', ')}); choose another --out`,
      );
  } else {
    let recorded: Manifest;
    try {
      recorded = JSON.parse(text) as Manifest;
    } catch {
      throw new Error(`${join(dir, SWEEP_FILES.manifest)} is not valid JSON`);
    }
    if (recorded.name !== name)
      throw new Error(`${dir} holds the sweep "${recorded.name}", not "${name}"; choose another --out`);
    for (const [i, before] of recorded.trials.entries()) {
      const now = manifest.trials[i];
      if (now && JSON.stringify(before.flags) !== JSON.stringify(now.flags))
        throw new Error(
          `${dir}: ${before.name} ran with ${describe(before)}, the file now says ${describe(now)}; a changed sweep needs a new --out`,
        );
    }
    if (JSON.stringify(recorded) === JSON.stringify(manifest)) return;
  }
  await writeFileAtomic(join(dir, SWEEP_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Where a trial stands on disk, and so how to run it: `train --out`, `train --resume`, or not at all. */
export type TrialState = 'new' | 'started' | 'finished';

/** The config.json fields a trial's flags pin down (switches and the recipe's name are not recorded there). */
function disagreements(config: TrainConfig, flags: TrialFlags): string[] {
  const expected: Partial<Record<keyof TrainConfig, unknown>> = {};
  if (flags.recipe !== undefined) expected.model = RECIPES[flags.recipe as RecipeName].config.model;
  for (const flag of FLAGS) {
    // Threads are a resource, not an identity: train lowers a count above the machine's cores.
    if (['recipe', 'autotune', 'workers', 'threads'].includes(flag) || flags[flag] === undefined) continue;
    expected[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof TrainConfig] = flags[flag];
  }
  return Object.entries(expected)
    .filter(([key, value]) => config[key as keyof TrainConfig] !== value)
    .map(([key, value]) => `${key} ${config[key as keyof TrainConfig]}, not ${value}`);
}

export async function trialState(dir: string, trial: Trial): Promise<TrialState> {
  const entries = await readdir(dir).catch(() => undefined);
  if (entries === undefined) return 'new';
  // Killed before train wrote its config: the folder is still a new run's (train removes its own stale temps).
  if (!entries.includes(RUN_FILES.config)) {
    const foreign = entries.filter((e) => !isOwnStaleTempFile(e, OWN_FILES));
    if (foreign.length > 0)
      throw new Error(`${dir} holds files but no ${RUN_FILES.config}: not a trial's run; move them away`);
    return 'new';
  }
  const config = await readConfig(dir);
  const other = disagreements(config, trial.flags);
  if (other.length > 0)
    throw new Error(
      `${dir} holds a run with other settings (${other.join(', ')}); it is not ${trial.name}'s: move it away`,
    );
  const history = await readHistory(dir).catch(() => []);
  // history.json is rewritten after each checkpoint: if a kill left it one epoch behind, resume rewrites it.
  return history.length >= config.epochs ? 'finished' : 'started';
}
