/**
 * The same sweep on a cluster. job.yaml: a ConfigMap with the sweep file and a Kubernetes Indexed Job,
 * one pod per trial, each running `sweep --trial $JOB_COMPLETION_INDEX` (the local sweep's trial i, to the
 * flag) into the shared ReadWriteMany claim. katib-experiment.yaml: a Katib Experiment over the same search
 * space (grid, or random), whose trials run train directly and report its `name=value` lines (StdOut).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../node/files.ts';
import { TRAINING_NODE_FLAGS } from '../node/training-flags.ts';
import type { Trial } from './expand.ts';
import { FLAGS, type Flag, type FlagValue, INTEGER_FLAGS, trainArgs } from './flags.ts';
import { trainCommand } from './leaderboard.ts';
import type { SweepSpec } from './spec.ts';

export const DEFAULT_CLUSTER = {
  /** `docker build --target build -t … .`: the project Dockerfile's build stage, sources and tsx included. */
  image: 'registry.example.com/mnist-onnx-cnn:0.1.0-build',
  /** deploy/sweeps/runs-pvc.yaml. */
  pvc: 'mnist-runs',
  cpu: 2,
};
/** Where the pods mount the claim, the sweep file and a writable /tmp. */
const RUNS = '/runs';
const SWEEP_FILE = '/etc/sweep/sweep.yaml';

/** Katib's trial metadata: the trial's own name (Katib substitutes it; not a JavaScript template). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: see above.
export const KATIB_TRIAL_NAME = '${trialSpec.Name}';

/** The Indexed Job's pod command: what `npm run sweep -- <file> --trial <i>` runs, with paths from env. */
export const TRIAL_COMMAND =
  'exec node --import tsx sweep/cli.ts "$SWEEP_FILE" --out "$SWEEP_OUT" --trial "$JOB_COMPLETION_INDEX" --threads-per-trial "$SWEEP_THREADS"';

export interface ClusterOptions {
  /** The sweep file's path, named in the generated files' headers. */
  file: string;
  spec: SweepSpec;
  /** The sweep file's text, carried by the ConfigMap (the pods expand the same trials from it). */
  text: string;
  trials: Trial[];
  outDir: string;
  image: string;
  pvc: string;
  cpu: number;
  /** Pods at once. */
  parallel: number;
}

const labels = (name: string) => ({ 'app.kubernetes.io/name': 'mnist-onnx-cnn', 'mnist-onnx-cnn/sweep': name });

/** The pod settings a Job trial and a Katib trial share: non-root, the claim, a writable /tmp. */
function podBasics(o: ClusterOptions) {
  return {
    restartPolicy: 'Never',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000, // the image's `node` user
      runAsGroup: 1000,
      fsGroup: 1000, // so the claim is writable
      seccompProfile: { type: 'RuntimeDefault' },
    },
    container: {
      image: o.image,
      workingDir: '/src', // the build stage's checkout
      env: [
        { name: 'HOME', value: '/tmp' },
        // One autotune cache for the whole sweep: shapes are measured once, not once per pod.
        { name: 'MNIST_ONNX_CNN_CACHE', value: `${RUNS}/.cache/mnist-onnx-cnn` },
      ],
      resources: {
        requests: { cpu: String(o.cpu), memory: '2Gi' },
        limits: { cpu: String(o.cpu), memory: '4Gi' },
      },
    },
    mounts: [
      { name: 'runs', mountPath: RUNS },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    volumes: [
      { name: 'runs', persistentVolumeClaim: { claimName: o.pvc } },
      { name: 'tmp', emptyDir: {} },
    ],
  };
}

export function indexedJob(o: ClusterOptions) {
  const name = `sweep-${o.spec.name}`;
  const pod = podBasics(o);
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, labels: labels(o.spec.name) },
    data: { 'sweep.yaml': o.text },
  };
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: labels(o.spec.name) },
    spec: {
      completionMode: 'Indexed',
      completions: o.trials.length,
      parallelism: Math.min(o.parallel, o.trials.length),
      // A retried pod resumes its trial from the last checkpoint, so retries are cheap: two per trial.
      backoffLimit: 2 * o.trials.length,
      template: {
        metadata: { labels: labels(o.spec.name) },
        spec: {
          restartPolicy: pod.restartPolicy,
          securityContext: pod.securityContext,
          containers: [
            {
              name: 'trial',
              ...pod.container,
              command: ['sh', '-c', TRIAL_COMMAND],
              env: [
                { name: 'SWEEP_FILE', value: SWEEP_FILE },
                { name: 'SWEEP_OUT', value: `${RUNS}/sweeps/${o.spec.name}` },
                { name: 'SWEEP_THREADS', value: String(o.cpu) },
                ...pod.container.env,
              ],
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [...pod.mounts, { name: 'sweep', mountPath: '/etc/sweep', readOnly: true }],
            },
          ],
          volumes: [...pod.volumes, { name: 'sweep', configMap: { name } }],
        },
      },
    },
  };
  return { configMap, job };
}

/** Katib's names for our flags: letters only (`batch-size` → `batchSize`). */
const katibName = (flag: Flag) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function katibParameter(flag: Flag, space: FlagValue[] | SweepSpec['random'][Flag]) {
  const values = Array.isArray(space) ? space : space && 'values' in space ? space.values : undefined;
  if (values) {
    const numeric = values.every((v) => typeof v === 'number');
    return {
      name: katibName(flag),
      parameterType: numeric ? 'discrete' : 'categorical',
      feasibleSpace: { list: values.map(String) },
    };
  }
  const range = space as { min: number; max: number; scale: 'linear' | 'log' };
  return {
    name: katibName(flag),
    parameterType: INTEGER_FLAGS.has(flag) ? 'int' : 'double',
    feasibleSpace: {
      min: String(range.min),
      max: String(range.max),
      ...(range.scale === 'log' ? { distribution: 'logUniform' } : {}),
    },
  };
}

/** Why Katib cannot run this search space, if it cannot. */
export function katibRefusal(spec: SweepSpec): string | undefined {
  const searched = FLAGS.filter((f) => spec.grid[f] || spec.random[f]);
  const switches = searched.filter((f) => {
    const space = spec.grid[f] ?? (spec.random[f] as { values?: FlagValue[] }).values ?? [];
    return space.some((v) => typeof v === 'boolean');
  });
  if (switches.length > 0)
    return `Katib substitutes values into flags, and ${switches.join(', ')} ${switches.length === 1 ? 'is a switch' : 'are switches'} with no value: use the Indexed Job`;
  return undefined;
}

export function katibExperiment(o: ClusterOptions) {
  const { spec } = o;
  const pod = podBasics(o);
  const searched = FLAGS.filter((f) => spec.grid[f] || spec.random[f]);
  const hasRandom = Object.keys(spec.random).length > 0;
  const evaluated = spec.base.validation === undefined ? 'test' : 'validation';
  const args = [
    ...trainArgs(spec.base).filter((_, i, all) => !(all[i] === '--threads' || all[i - 1] === '--threads')),
    ...searched.flatMap((flag) => [`--${flag}`, `\${trialParameters.${katibName(flag)}}`]),
    '--threads',
    String(spec.base.threads ?? o.cpu),
    '--out',
    `${RUNS}/sweeps/${spec.name}/katib/\${trialParameters.trialName}`,
  ];
  return {
    apiVersion: 'kubeflow.org/v1beta1',
    kind: 'Experiment',
    metadata: { name: `sweep-${spec.name}`, labels: labels(spec.name) },
    spec: {
      objective: {
        type: 'maximize',
        // What the trials print: a sweep with --validation never reads the test set (train/run-metrics.ts).
        objectiveMetricName: `${evaluated}_accuracy`,
        additionalMetricNames: [`best_${evaluated}_accuracy`, `${evaluated}_loss`, 'train_seconds'],
      },
      // Grid walks every point; with random ranges Katib draws every parameter, grid ones included.
      algorithm: hasRandom
        ? { algorithmName: 'random', algorithmSettings: [{ name: 'random_state', value: String(spec.seed) }] }
        : { algorithmName: 'grid' },
      parallelTrialCount: Math.min(o.parallel, o.trials.length),
      maxTrialCount: o.trials.length,
      maxFailedTrialCount: 3,
      metricsCollectorSpec: { collector: { kind: 'StdOut' } },
      parameters: searched.map((flag) => katibParameter(flag, spec.grid[flag] ?? spec.random[flag])),
      trialTemplate: {
        primaryContainerName: 'training',
        trialParameters: [
          ...searched.map((flag) => ({ name: katibName(flag), description: `--${flag}`, reference: katibName(flag) })),
          { name: 'trialName', description: "the trial's run directory", reference: KATIB_TRIAL_NAME },
        ],
        trialSpec: {
          apiVersion: 'batch/v1',
          kind: 'Job',
          spec: {
            template: {
              spec: {
                restartPolicy: pod.restartPolicy,
                securityContext: pod.securityContext,
                containers: [
                  {
                    name: 'training',
                    ...pod.container,
                    // Katib's StdOut collector wraps this command to read train's `name=value` lines.
                    command: ['node', ...TRAINING_NODE_FLAGS, '--import', 'tsx', 'train/cli/train.ts', ...args],
                    volumeMounts: pod.mounts,
                  },
                ],
                volumes: pod.volumes,
              },
            },
          },
        },
      },
    },
  };
}

const yaml = (docs: object[]) => docs.map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');

/** Write a generated file, refusing to replace a different one (it may be the user's edit). */
async function writeGenerated(path: string, text: string): Promise<void> {
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing === text) return;
  if (existing !== undefined)
    throw new Error(`${path} exists and differs (edited, or another sweep's); remove it to regenerate`);
  await writeFileAtomic(path, text);
}

/**
 * Write job.yaml and, where Katib can express the search space, katib-experiment.yaml (else `log` hears why);
 * returns the paths.
 */
export async function emitKubernetes(o: ClusterOptions, log: (line: string) => void = console.log): Promise<string[]> {
  const header = [
    `# Generated by \`npm run sweep -- ${o.file} --emit k8s\`: the sweep "${o.spec.name}", ${o.trials.length} trials.`,
    `# Needs the claim ${o.pvc} (deploy/sweeps/runs-pvc.yaml) and the image ${o.image}`,
    "# (docker build --target build -t <image> . — the Dockerfile's build stage: sources, tsx).",
  ];
  const { configMap, job } = indexedJob(o);
  const trialLines = o.trials.map((t) => `#   ${t.name} (index ${t.index}): ${trainCommand(t)}`);
  const jobPath = join(o.outDir, 'job.yaml');
  await writeGenerated(
    jobPath,
    `${[
      ...header,
      `# Pod i (JOB_COMPLETION_INDEX) runs trial i into ${RUNS}/sweeps/${o.spec.name}/trial-NNN; the leaderboard, from`,
      `# a pod or a copy of the folder: npm run sweep -- ${o.file} --out ${RUNS}/sweeps/${o.spec.name} --report`,
      '# Trials:',
      ...trialLines,
    ].join('\n')}\n${yaml([configMap, job])}`,
  );
  const refusal = katibRefusal(o.spec);
  if (refusal) {
    log(`no Katib Experiment: ${refusal}`);
    return [jobPath];
  }
  const katibPath = join(o.outDir, 'katib-experiment.yaml');
  await writeGenerated(
    katibPath,
    `${[...header, `# Katib picks the trials itself; each writes ${RUNS}/sweeps/${o.spec.name}/katib/<trial name>.`].join('\n')}\n${yaml([katibExperiment(o)])}`,
  );
  return [jobPath, katibPath];
}
