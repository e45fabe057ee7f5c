/**
 * npm run sweep -- <sweep file> [options]
 *
 * Runs a sweep's trials as ordinary run directories under runs/sweeps/<name>/ (or --out), --parallel
 * at a time, skipping finished trials and resuming interrupted ones; then ranks them (leaderboard.md,
 * plots) and prints the best trial as a ready command. `--trial i` runs trial i alone (what a Kubernetes
 * pod runs with i = $JOB_COMPLETION_INDEX); `--emit k8s` writes the Indexed Job and Katib Experiment.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { type CliIo, lines, processIo } from '../node/cli/io.ts';
import { positiveInt, upTo } from '../node/cli/options.ts';
import { CliExit, newProgram } from '../node/cli/program.ts';
import { runCommand } from '../node/cli/run-cli.ts';
import { runIfMain } from '../node/cli/run-if-main.ts';
import { expandTrials, type Trial } from './expand.ts';
import { DEFAULT_CLUSTER, emitKubernetes } from './k8s.ts';
import { trainCommand, writeLeaderboard } from './leaderboard.ts';
import { runTrials, type TrialOutcome } from './local.ts';
import { readSweepFile } from './spec.ts';
import { openSweepDir } from './sweep-dir.ts';

/** A trial index; an empty one (JOB_COMPLETION_INDEX unset outside a Job) must not read as trial 0. */
function trialIndex(value: string): number {
  if (!/^\d+$/.test(value))
    throw new InvalidArgumentError('must be a trial index 0, 1, … (is JOB_COMPLETION_INDEX set?)');
  return Number(value);
}

const command = (io: CliIo) =>
  newProgram('sweep', io)
    .description('Run a sweep of training runs (grid and/or random search), locally or as Kubernetes manifests')
    .argument('<file>', 'sweep file, YAML or JSON (see docs/sweeps.md)')
    .option('--out <dir>', "the sweep's folder (default: runs/sweeps/<name>)")
    .option('--parallel <n>', 'trials trained at once, each a train process', positiveInt, 1)
    .option(
      '--threads-per-trial <n>',
      'threads per trial unless the sweep sets threads (default: cores / --parallel)',
      positiveInt,
    )
    .option('--trial <i>', 'run trial i only (a pod runs --trial $JOB_COMPLETION_INDEX)', trialIndex)
    .option('--list', 'print the trials as train commands and run nothing')
    .option('--report', 'write the leaderboard from the trials on disk and run nothing')
    .addOption(new Option('--emit <target>', 'write cluster manifests instead of running').choices(['k8s']))
    .option('--out-dir <dir>', 'where --emit writes (default: deploy/sweeps/<name>)')
    .option('--image <ref>', "the image trials run in: the Dockerfile's build stage", imageRef, DEFAULT_CLUSTER.image)
    .option('--pvc <claim>', 'the ReadWriteMany claim trials write to', claimName, DEFAULT_CLUSTER.pvc)
    .option(
      '--cpu <n>',
      'CPUs (and train threads) per trial pod (at most 256)',
      upTo(256, positiveInt),
      DEFAULT_CLUSTER.cpu,
    );

// Written into YAML manifests: a newline or quote in them would write documents of its own (an outside
// attack's --image made job.yaml a Secret, a ConfigMap and a Job).
function imageRef(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/.test(value))
    throw new InvalidArgumentError('must be an image reference (letters, digits, . _ - / : @; no spaces).');
  return value;
}
function claimName(value: string): string {
  if (value.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(value))
    throw new InvalidArgumentError('must be a Kubernetes claim name (lowercase letters, digits, - and .).');
  return value;
}

interface Flags {
  out?: string;
  parallel: number;
  threadsPerTrial?: number;
  trial?: number;
  list?: boolean;
  report?: boolean;
  emit?: 'k8s';
  outDir?: string;
  image: string;
  pvc: string;
  cpu: number;
}

/** The trials --trial selects (all without it), run --parallel at a time; none with --report. */
function runSelected(
  flags: Flags,
  trials: Trial[],
  dir: string,
  signal: AbortSignal,
  print: (line: string) => void,
): Promise<Map<number, TrialOutcome>> {
  if (flags.report) return Promise.resolve(new Map());
  let selected = trials;
  if (flags.trial !== undefined) {
    const trial = trials[flags.trial];
    if (!trial) throw new Error(`no trial ${flags.trial}: the sweep has ${trials.length} (0–${trials.length - 1})`);
    selected = [trial];
  }
  const parallel = flags.trial === undefined ? flags.parallel : 1;
  return runTrials({
    dir,
    trials: selected,
    parallel,
    threads: flags.threadsPerTrial ?? Math.max(1, Math.floor(availableParallelism() / parallel)),
    print,
    // A pod's output is its log: train's metric lines must reach stdout for Katib and kubectl logs.
    output: flags.trial === undefined ? undefined : () => print,
    signal,
  });
}

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const program = command(io).parse(argv, { from: 'user' });
    const [file] = program.args as [string];
    const flags = program.opts<Flags>();
    const print = lines(io.out);
    const { text, spec } = await readSweepFile(file);
    const trials = expandTrials(spec);

    if (flags.list) {
      print(trials.map((trial) => `${trial.name}: ${trainCommand(trial)}`).join('\n'));
      return;
    }
    if (flags.emit) {
      const outDir = flags.outDir ?? join('deploy', 'sweeps', spec.name);
      const written = await emitKubernetes({ file, spec, text, trials, outDir, ...flags }, print);
      print(`wrote ${written.join(', ')} (${trials.length} trials)`);
      return;
    }

    const dir = flags.out ?? join('runs', 'sweeps', spec.name);
    await openSweepDir(dir, spec.name, trials);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop).once('SIGTERM', stop);
    let outcomes: Map<number, TrialOutcome>;
    try {
      outcomes = await runSelected(flags, trials, dir, controller.signal, print);
    } finally {
      process.off('SIGINT', stop).off('SIGTERM', stop); // an in-process caller keeps no listener
    }
    if (controller.signal.aborted) {
      print(`stopped; rerun the same command to resume (finished trials are kept): ${dir}`);
      throw new CliExit(130);
    }
    const failed = [...outcomes.values()].filter((o) => o === 'failed').length;
    if (flags.trial === undefined) {
      const { table, best } = await writeLeaderboard(dir, spec.name, trials);
      print(table);
      print(best ? `best: ${best.trial}: ${best.command}` : 'no trial has finished yet');
      if (best?.finalCommand)
        print(
          `then without --validation (the held-out images back in training), its test accuracy reported once: ${best.finalCommand}`,
        );
      print(`wrote ${join(dir, 'leaderboard.md')} and the plots in ${join(dir, 'compare')}`);
    }
    if (failed > 0 && flags.trial !== undefined) throw new Error(`trial ${flags.trial} failed (its output is above)`);
    if (failed > 0)
      throw new Error(`${failed} trial${failed === 1 ? '' : 's'} failed (their logs are in ${join(dir, 'logs')})`);
  });
}

runIfMain(import.meta.url, main);
