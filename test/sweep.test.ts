/**
 * npm run sweep: a 4-trial sweep on 500 images runs locally two at a time, survives a kill of its whole
 * process group (finished trials are not rerun, the interrupted one resumes), and ranks its trials; the
 * emitted Indexed Job and Katib Experiment parse and describe those same trials, and the Job's pod command,
 * run here with JOB_COMPLETION_INDEX=2, trains exactly the local trial 2. Everything in temp dirs.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { RECIPES } from '../core/training/recipes.ts';
import { main } from '../sweep/cli.ts';
import { expandTrials, type Trial } from '../sweep/expand.ts';
import { trainArgs } from '../sweep/flags.ts';
import { DEFAULT_CLUSTER, emitKubernetes, KATIB_TRIAL_NAME, katibRefusal } from '../sweep/k8s.ts';
import { parseSweep, readSweepFile } from '../sweep/spec.ts';
import { openSweepDir, trialState } from '../sweep/sweep-dir.ts';
import { writeConfig } from '../train/run-dir.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const root = tmp('sweep-');
// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML; the assertions are the types.
type Manifest = any;

const SWEEP = `# 4 trials: seeds 0 and 1 (grid), each twice, with a random lr and batch size
name: tiny
base: { recipe: fast, epochs: 1, limit: 500, autotune: false }
grid: { seed: [0, 1] }
random:
  lr: { min: 0.002, max: 0.05, scale: log }
  batch-size: { values: [64, 128] }
trials: 4
`;
const sweepFile = join(root, 'tiny.yaml');
const out = join(root, 'out');
const env = { ...process.env, CI: '1', MNIST_ONNX_CNN_CACHE: join(root, 'cache') };
/** What --parallel 2 gives each trial here, and so what the Job's pods are told to use. */
const threads = Math.max(1, Math.floor(availableParallelism() / 2));

beforeAll(() => writeFileSync(sweepFile, SWEEP));

/** Start a sweep in its own process group, so a kill takes its train processes with it, as Ctrl-C or a pod's end would. */
function startSweep(...args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'sweep/cli.ts', ...args], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, lines, exited };
}

const until = async (condition: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !condition() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  return condition();
};
const trialDir = (dir: string, i: number) => join(dir, `trial-00${i}`);
const finished = (dir: string) => existsSync(join(dir, 'history.json'));
const interrupted = (dir: string) => existsSync(join(dir, 'config.json')) && !finished(dir);
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('sweep files', () => {
  it('refuses, in one line and at once, files an outside attack hung or crashed it with', async () => {
    // A FIFO (read as a file, it never ended), a 600-byte grid of 10⁷ points (it ran out of heap expanding them).
    const fifo = join(root, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(await failingCli(main, fifo, '--list')).toBe(
      `error: cannot read sweep file ${fifo}: a FIFO, not a regular file`,
    );
    const huge = join(root, 'huge.json');
    const ten = (scale: number) => Array.from({ length: 10 }, (_, i) => (i + 1) * scale);
    const grid = {
      lr: ten(0.001),
      seed: ten(1),
      momentum: ten(0.05),
      'weight-decay': ten(0.0001),
      epochs: ten(1),
      'batch-size': ten(16),
      'label-smoothing': ten(0.01),
    };
    writeFileSync(huge, JSON.stringify({ name: 'huge', grid }));
    expect(await failingCli(main, huge, '--list')).toMatch(
      /^error: .*grid: 10000000 points: at most 10000 trials in one sweep/,
    );
    // What --emit k8s writes into YAML can't carry a document of its own.
    const bad: [string, string][] = [
      ['--image', 'img\napiVersion: v1\nkind: Secret'],
      ['--pvc', 'Bad/../name'],
      ['--cpu', '1000000000'],
    ];
    for (const [flag, value] of bad)
      expect(await failingCli(main, sweepFile, '--emit', 'k8s', '--out-dir', join(root, 'never'), flag, value)).toMatch(
        new RegExp(`^error: option '${flag} <[a-z]+>' argument [\\s\\S]* is invalid`),
      );
    expect(existsSync(join(root, 'never'))).toBe(false);
  });

  it('refuses a bad file with one line naming the field', async () => {
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'name: bad\ngrid: { lr: [0.01, -1] }\n');
    expect(await failingCli(main, bad)).toBe(`error: ${bad}: grid.lr[1]: Too small: expected number to be >0`);
    // A pod command run where JOB_COMPLETION_INDEX is unset must not quietly run trial 0.
    expect(await failingCli(main, sweepFile, '--trial', '')).toMatch(
      /^error: option '--trial <i>' argument '' is invalid\. must be a trial index/,
    );
    const message = (data: unknown) => {
      try {
        parseSweep(data, 'f.yaml');
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(message({ name: 'x', grid: { 'learning-rate': [1] } })).toBe(
      'f.yaml: grid: Unrecognized key: "learning-rate"',
    );
    expect(message({ name: 'x', random: { lr: { min: 0.1, max: 0.01 } }, trials: 2 })).toBe(
      'f.yaml: random.lr.max: min must be below max',
    );
    expect(message({ name: 'x', random: { lr: { min: 0.1, max: 1 } } })).toBe(
      'f.yaml: trials: required with random ranges (the trial budget)',
    );
    expect(message({ name: 'x', base: { seed: 1 }, grid: { seed: [0, 1] } })).toBe(
      'f.yaml: grid.seed: also set in base',
    );
    expect(message({ name: 'Big Sweep', grid: { seed: [0] } })).toMatch(/^f\.yaml: name: /);
    // Dropout on a model without dropout layers, whichever part names the model or its recipe: refused on
    // reading (an outside attack found every trial failing one at a time, --emit k8s writing the Job).
    expect(message({ name: 'x', base: { model: 'cnn' }, grid: { dropout: [0.1, 0.2] } })).toBe(
      'f.yaml: grid.dropout: cnn has no dropout layers (cnn7, cnn7-wide, cnn7-wider, cnn9-wide do)',
    );
    expect(message({ name: 'x', base: { dropout: 0.2 }, grid: { model: ['cnn7', 'mlp', 'cnn'] } })).toMatch(
      /^f\.yaml: base\.dropout: mlp, cnn have no dropout layers/,
    );
    expect(message({ name: 'x', random: { dropout: { min: 0, max: 0.5 } }, trials: 2 })).toMatch(
      /^f\.yaml: random\.dropout: cnn has no/, // the tutorial recipe's model
    );
    expect(message({ name: 'x', base: { recipe: 'fast' }, grid: { dropout: [0.1] } })).toMatch(/fast-cnn has no/);
    expect(message({ name: 'x', base: { recipe: 'best' }, grid: { dropout: [0.1, 0.2] } })).toBeUndefined();
    expect(
      message({ name: 'x', random: { model: { values: ['cnn7', 'cnn9-wide'] } }, grid: { dropout: [0] }, trials: 2 }),
    ).toBeUndefined();
    // Plain epochs: never more than a trial's epochs (a range's smallest), never where a trial has no augmentation.
    expect(message({ name: 'x', base: { recipe: 'best' }, grid: { 'plain-epochs': [1, 2] } })).toBeUndefined();
    expect(message({ name: 'x', base: { recipe: 'best' }, grid: { 'plain-epochs': [1, 17] } })).toBe(
      'f.yaml: grid.plain-epochs: 17 is more than the 16 epochs a trial can have',
    );
    expect(
      message({
        name: 'x',
        base: { recipe: 'best', 'plain-epochs': 3 },
        random: { epochs: { min: 2, max: 9 } },
        trials: 2,
      }),
    ).toBe('f.yaml: base.plain-epochs: 3 is more than the 2 epochs a trial can have');
    expect(message({ name: 'x', grid: { 'plain-epochs': [1] } })).toBe(
      'f.yaml: grid.plain-epochs: a trial has no augmentation to leave out (augment, elastic or erase)',
    );
    expect(message({ name: 'x', base: { augment: true }, grid: { 'plain-epochs': [1] } })).toBeUndefined();
    // Erasing or elastic distortion at 0 in any trial leaves it unaugmented (an outside attack: erase 0 passed).
    expect(message({ name: 'x', base: { erase: 0 }, grid: { 'plain-epochs': [1] } })).toMatch(/no augmentation/);
    expect(message({ name: 'x', base: { 'plain-epochs': 1 }, grid: { elastic: [0, 34] } })).toMatch(/no augmentation/);
    expect(message({ name: 'x', base: { 'plain-epochs': 1 }, grid: { erase: [0.2, 0.5] } })).toBeUndefined();
  });

  it('expands the same trials every time, trial i independent of the budget', () => {
    const spec = parseSweep(
      { name: 'x', grid: { seed: [0, 1, 2] }, random: { lr: { min: 1e-3, max: 0.1 } }, trials: 5 },
      'f',
    );
    const trials = expandTrials(spec);
    expect(expandTrials(spec)).toEqual(trials);
    expect(expandTrials({ ...spec, trials: 9 }).slice(0, 5)).toEqual(trials);
    expect(trials.map((t) => t.flags.seed)).toEqual([0, 1, 2, 0, 1]); // grid points cycle under random draws
    expect(new Set(trials.map((t) => t.flags.lr)).size).toBe(5);
    // A grid alone: every combination, the later flag (in the flags table's order) varying fastest.
    const grid = expandTrials(parseSweep({ name: 'g', grid: { seed: [0, 1], lr: [0.1, 0.2] } }, 'f'));
    expect(grid.map((t) => trainArgs(t.flags).join(' '))).toEqual([
      '--lr 0.1 --seed 0',
      '--lr 0.1 --seed 1',
      '--lr 0.2 --seed 0',
      '--lr 0.2 --seed 1',
    ]);
  });

  it('never takes over a folder that is not the same sweep', async () => {
    const trials = expandTrials(parseSweep({ name: 'x', grid: { seed: [0, 1] } }, 'f'));
    const foreign = tmp('sweep-foreign-');
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    await expect(openSweepDir(foreign, 'x', trials)).rejects.toThrow(
      /holds files that are not this sweep's \(notes\.txt\)/,
    );
    const dir = tmp('sweep-changed-');
    await openSweepDir(dir, 'x', trials);
    const changed = expandTrials(parseSweep({ name: 'x', grid: { seed: [5, 1] } }, 'f'));
    await expect(openSweepDir(dir, 'x', changed)).rejects.toThrow(
      'trial-000 ran with --seed 0, the file now says --seed 5; a changed sweep needs a new --out',
    );
    // A run that is not the trial's, where the trial's folder would be, is never resumed as the trial.
    await writeConfig(join(dir, 'trial-001'), { ...RECIPES.tutorial.config, seed: 7 });
    await expect(trialState(join(dir, 'trial-001'), trials[1] as Trial)).rejects.toThrow(
      /trial-001 holds a run with other settings \(seed 7, not 1\); it is not trial-001's: move it away$/,
    );
    await writeConfig(join(dir, 'trial-000'), { ...RECIPES.tutorial.config, seed: 0 });
    expect(await trialState(join(dir, 'trial-000'), trials[0] as Trial)).toBe('started');
  });
});

describe('example sweeps', () => {
  it('parse, and deploy/sweeps/ holds exactly what --emit k8s writes for them', async () => {
    for (const name of ['smoke', 'fast', 'best']) {
      const file = `sweeps/${name}.yaml`;
      const { spec, text } = await readSweepFile(join(ROOT, file));
      if (name === 'smoke') continue; // a local example: no committed manifests
      const committed = (f: string) => readFileSync(join(ROOT, 'deploy/sweeps', name, f), 'utf8');
      const parallel = (parse(committed('job.yaml').split('---\n')[1] ?? '') as Manifest).spec.parallelism;
      const outDir = tmp('sweep-emit-');
      await emitKubernetes({ file, spec, text, trials: expandTrials(spec), outDir, parallel, ...DEFAULT_CLUSTER });
      for (const f of ['job.yaml', 'katib-experiment.yaml'])
        expect(readFileSync(join(outDir, f), 'utf8'), `${name}/${f}`).toBe(committed(f));
    }
  });

  it('a search over a switch gets the Job but no Katib Experiment, with the reason', () => {
    const spec = parseSweep({ name: 'x', grid: { augment: [false, true] } }, 'f');
    expect(katibRefusal(spec)).toBe(
      'Katib substitutes values into flags, and augment is a switch with no value: use the Indexed Job',
    );
  });
});

describe('npm run sweep', () => {
  it('runs 4 trials 2 at a time, resumes after a kill without rerunning finished trials, ranks them', async () => {
    const first = startSweep(sweepFile, '--out', out, '--parallel', '2');
    // Kill the whole process group once a trial has finished and another is mid-run (its config written).
    expect(await until(() => [0, 1, 2, 3].some((i) => finished(trialDir(out, i))), 60_000)).toBe(true);
    await until(() => [0, 1, 2, 3].some((i) => interrupted(trialDir(out, i))), 10_000);
    process.kill(-(first.child.pid as number), 'SIGKILL');
    await first.exited;

    const done = [0, 1, 2, 3].filter((i) => finished(trialDir(out, i)));
    const midway = [0, 1, 2, 3].filter((i) => interrupted(trialDir(out, i)));
    expect(done.length).toBeGreaterThan(0);
    expect(midway.length).toBeGreaterThan(0);
    const mtimes = done.map((i) => statSync(join(trialDir(out, i), 'checkpoint.bin')).mtimeMs);

    // The rerun in this process: it listens for SIGINT/SIGTERM while its trials run, and leaves no listener behind.
    const listeners = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');
    const before = listeners();
    const { stdout } = await passingCli(main, sweepFile, '--out', out, '--parallel', '2');
    expect(listeners()).toBe(before);
    for (const i of done) expect(stdout).toContain(`trial-00${i} finished earlier: skipped`);
    for (const i of midway) expect(stdout).toContain(`trial-00${i} resuming: train --resume ${trialDir(out, i)}`);
    expect(done.map((i) => statSync(join(trialDir(out, i), 'checkpoint.bin')).mtimeMs)).toEqual(mtimes);

    // Four ordinary run directories, each trained with its trial's flags and the cores split two ways.
    const trials = expandTrials(parseSweep(parse(SWEEP), 'tiny'));
    for (const trial of trials) {
      const config = readJson(join(out, trial.name, 'config.json'));
      expect(config).toMatchObject({ model: 'fast-cnn', epochs: 1, limit: 500, threads, seed: trial.flags.seed });
      expect(config.lr).toBe(trial.flags.lr);
      expect(config.batchSize).toBe(trial.flags['batch-size']);
      expect(readJson(join(out, trial.name, 'history.json'))).toHaveLength(1);
    }
    expect(readJson(join(out, 'sweep.json')).trials.map((t: { name: string }) => t.name)).toEqual(
      trials.map((t) => t.name),
    );

    // The leaderboard: four finished rows, best first, and the best trial as a ready command.
    const board = readJson(join(out, 'leaderboard.json')) as {
      rank: number;
      trial: string;
      evaluatedOn: string;
      accuracy: number;
    }[];
    expect(board.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
    expect(board.map((r) => r.evaluatedOn)).toEqual(['test', 'test', 'test', 'test']);
    const accuracies = board.map((r) => r.accuracy);
    for (const a of accuracies) expect(a).toBeGreaterThan(10);
    expect(accuracies).toEqual([...accuracies].sort((a, b) => b - a));
    const best = trials.find((t) => t.name === board[0]?.trial);
    expect(stdout).toContain(`best: ${best?.name}: npm run train -- ${trainArgs(best?.flags ?? {}).join(' ')}`);
    const table = readFileSync(join(out, 'leaderboard.md'), 'utf8');
    expect(table).toContain('| rank | trial | batch-size | lr | seed | test accuracy |');
    expect(table.match(/\| finished \|/g)).toHaveLength(4);
    expect(readdirSync(join(out, 'compare'))).toContain('accuracy.svg');
    // A trial trained by this run printed Katib-style metric lines, which its log keeps (one killed right after
    // its last checkpoint may not have printed them: it is finished on disk, where the leaderboard reads it).
    const log = readFileSync(join(out, 'logs', `trial-00${[0, 1, 2, 3].find((i) => !done.includes(i))}.log`), 'utf8');
    expect(log).toMatch(/^test_accuracy=0\.\d{4}$/m);
    expect(log).toMatch(/^train_seconds=\d+\.\d$/m);
  }, 180_000);

  describe('--emit k8s', () => {
    const deployDir = join(root, 'k8s');
    let job: Manifest;
    let configMap: Manifest;
    let experiment: Manifest;
    beforeAll(async () => {
      await passingCli(
        main,
        sweepFile,
        '--emit',
        'k8s',
        '--out-dir',
        deployDir,
        '--cpu',
        String(threads),
        '--parallel',
        '2',
      );
      const docs = (file: string) =>
        parseAllDocuments(readFileSync(join(deployDir, file), 'utf8')).map((d) => {
          expect(d.errors).toEqual([]);
          return d.toJS() as Manifest;
        });
      [configMap, job] = docs('job.yaml');
      [experiment] = docs('katib-experiment.yaml');
    });

    it('writes an Indexed Job: one pod per trial, the project image, the runs claim, trial = JOB_COMPLETION_INDEX', () => {
      expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'sweep-tiny' } });
      expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 2 });
      const pod = job.spec.template.spec;
      expect(pod.restartPolicy).toBe('Never');
      const [container] = pod.containers;
      // The serving image's own repository (deploy/k8s), at the Dockerfile's build stage (sources and tsx).
      const deployment = parseAllDocuments(readFileSync(join(ROOT, 'deploy/k8s/deployment.yaml'), 'utf8'))[0]?.toJS();
      const served: string = deployment.spec.template.spec.containers[0].image;
      expect(container.image.split(':')[0]).toBe(served.split(':')[0]);
      expect(container.command.join(' ')).toContain('--trial "$JOB_COMPLETION_INDEX"');
      expect(container.resources.requests.cpu).toBe(String(threads));
      // The claim is deploy/sweeps/runs-pvc.yaml's, ReadWriteMany, mounted where SWEEP_OUT points.
      const pvc = parseAllDocuments(readFileSync(join(ROOT, 'deploy/sweeps/runs-pvc.yaml'), 'utf8'))[0]?.toJS();
      expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
      const claim = pod.volumes.find((v: Manifest) => v.persistentVolumeClaim);
      expect(claim.persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
      const mount = container.volumeMounts.find((m: Manifest) => m.name === claim.name).mountPath;
      const envValue = (name: string) => container.env.find((e: Manifest) => e.name === name)?.value;
      expect(envValue('SWEEP_OUT')).toBe(`${mount}/sweeps/tiny`);
      // The sweep file travels in the ConfigMap, mounted where SWEEP_FILE points: the pods expand the same trials.
      const sweepVolume = pod.volumes.find((v: Manifest) => v.configMap?.name === configMap.metadata.name);
      const sweepMount = container.volumeMounts.find((m: Manifest) => m.name === sweepVolume.name).mountPath;
      expect(envValue('SWEEP_FILE')).toBe(`${sweepMount}/sweep.yaml`);
      expect(configMap.data['sweep.yaml']).toBe(SWEEP);
      const local = readJson(join(out, 'sweep.json')).trials;
      const podTrials = expandTrials(parseSweep(parse(configMap.data['sweep.yaml']), 'cm'));
      expect(podTrials.map((t) => ({ name: t.name, flags: t.flags }))).toEqual(local);
      expect(podTrials).toHaveLength(job.spec.completions);
    });

    it('writes a Katib Experiment over the same search space, holding every local trial', () => {
      expect(experiment).toMatchObject({ apiVersion: 'kubeflow.org/v1beta1', kind: 'Experiment' });
      const { spec } = experiment;
      expect(spec.objective).toMatchObject({ type: 'maximize', objectiveMetricName: 'test_accuracy' });
      expect(spec.algorithm.algorithmName).toBe('random');
      expect(spec.metricsCollectorSpec.collector.kind).toBe('StdOut');
      expect(spec).toMatchObject({ maxTrialCount: 4, parallelTrialCount: 2 });
      const parameters = new Map<string, Manifest>(spec.parameters.map((p: Manifest) => [p.name, p]));
      expect([...parameters.keys()]).toEqual(['batchSize', 'lr', 'seed']);
      expect(parameters.get('lr')).toMatchObject({
        parameterType: 'double',
        feasibleSpace: { distribution: 'logUniform' },
      });
      // Every trial the local sweep ran lies in Katib's feasible space.
      for (const trial of readJson(join(out, 'sweep.json')).trials as { flags: Record<string, number> }[]) {
        const { lr, seed } = trial.flags;
        const lrSpace = parameters.get('lr').feasibleSpace;
        expect(lr).toBeGreaterThanOrEqual(Number(lrSpace.min));
        expect(lr).toBeLessThanOrEqual(Number(lrSpace.max));
        expect(parameters.get('seed').feasibleSpace.list).toContain(String(seed));
        expect(parameters.get('batchSize').feasibleSpace.list).toContain(String(trial.flags['batch-size']));
      }
      // The trial template: its primary container exists, and every substitution names a declared trial parameter
      // whose reference is a parameter (or Katib's trial metadata).
      const { trialTemplate } = spec;
      const containers = trialTemplate.trialSpec.spec.template.spec.containers;
      const container = containers.find((c: Manifest) => c.name === trialTemplate.primaryContainerName);
      const declared = new Map<string, string>(
        trialTemplate.trialParameters.map((p: Manifest) => [p.name, p.reference]),
      );
      const used = [...container.command.join(' ').matchAll(/\$\{trialParameters\.(\w+)\}/g)].map((m) => m[1]);
      expect(new Set(used)).toEqual(new Set(declared.keys()));
      for (const reference of declared.values())
        expect(parameters.has(reference) || reference === KATIB_TRIAL_NAME).toBe(true);
      expect(container.command.slice(0, 6)).toEqual([
        'node',
        '--single-threaded-gc',
        '--initial-old-space-size=64',
        '--import',
        'tsx',
        'train/cli/train.ts',
      ]);
      expect(container.command).toEqual(
        expect.arrayContaining(['--recipe', 'fast', '--limit', '500', '--no-autotune']),
      );
    });

    it("the pod's command, run here with JOB_COMPLETION_INDEX=2, trains the local sweep's trial 2", async () => {
      const [container] = job.spec.template.spec.containers;
      const podEnv: Record<string, string> = Object.fromEntries(container.env.map((e: Manifest) => [e.name, e.value]));
      // The pod's paths, moved into temp dirs: the ConfigMap's file and an empty claim.
      const mounted = join(root, 'pod-sweep.yaml');
      writeFileSync(mounted, configMap.data['sweep.yaml']);
      const claim = join(root, 'pod-runs');
      mkdirSync(claim);
      const podOut = join(claim, 'sweeps', 'tiny');
      const { stdout } = await promisify(execFile)(container.command[0], container.command.slice(1), {
        cwd: ROOT, // the image's workingDir holds this repository
        env: {
          ...env,
          ...podEnv,
          MNIST_ONNX_CNN_CACHE: env.MNIST_ONNX_CNN_CACHE,
          SWEEP_FILE: mounted,
          SWEEP_OUT: podOut,
          JOB_COMPLETION_INDEX: '2',
        },
      });
      expect(readdirSync(podOut).filter((e) => e.startsWith('trial-'))).toEqual(['trial-002']);
      expect(readJson(join(podOut, 'trial-002', 'config.json'))).toEqual(
        readJson(join(out, 'trial-002', 'config.json')),
      );
      expect(stdout).toMatch(/^test_accuracy=0\.\d{4}$/m); // in the pod's log, for Katib and kubectl logs
      const trial2 = expandTrials(parseSweep(parse(SWEEP), 'tiny'))[2];
      expect(stdout).toContain(`trial-002 starting: train ${trainArgs(trial2?.flags ?? {}).join(' ')}`);
    }, 60_000);
  });
});
