/**
 * `npm run bench -- --what epoch`: one epoch of the tutorial's recipe on real MNIST (SGD lr 0.01,
 * momentum 0.5, batch 64) — ours as `npm run train -- --epochs 1` runs it, in a process of its own with
 * the training flags (sweep/run-trial.ts), PyTorch's through bench/torch_epoch.py — alternating, with the
 * test accuracy each reached. In the bench's own process, whose heap holds every benchmark's modules, the
 * same epoch ran 5.4–5.7 s where `train` took 4.8–5.1 (V8's old-space limit crossed again and again):
 * the figure must be the one a user gets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelName } from '../core/model/zoo/index.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { type Dataset, loadMnist } from '../node/mnist.ts';
import { startTrial } from '../sweep/run-trial.ts';
import { trainRun } from '../train/loop.ts';
import { evaluationOf, readHistory } from '../train/run-dir.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { type TorchEpoch, type TorchInfo, torchEpoch } from './torch.ts';
import { type KeptConfig, TorchRounds, type TorchThreads, threadsLabel, torchConfigs } from './torch-config.ts';

export interface EpochBenchOptions {
  models: ModelName[];
  threads: number[];
  rounds: number;
  torch?: TorchInfo;
  autotune: { cacheDir: string } | false;
  /** How ours runs (default: `train` in a process of its own). */
  runEpoch?: EpochRunner;
}

interface EpochResult {
  seconds: number;
  testAccuracy: number;
}

interface Row {
  model: string;
  threads: number;
  ours: EpochResult;
  /** PyTorch's faster configuration (by median seconds): its medians and the settings it reported. */
  torch?: EpochResult & { ranWith: TorchThreads; tried: KeptConfig['tried'] };
}

/** One epoch of ours: seconds of training and test accuracy. */
export type EpochRunner = (
  model: ModelName,
  threads: number,
  autotune: EpochBenchOptions['autotune'],
) => Promise<EpochResult>;

/** One epoch as `train` runs it (its own process); seconds and test accuracy from the run's history. */
const trainEpoch: EpochRunner = async (model, threads, autotune) => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-epoch-'));
  try {
    const run = join(dir, 'run');
    const args = ['--model', model, '--epochs', '1', '--threads', String(threads), '--out', run];
    const output: string[] = [];
    const { code } = await startTrial(autotune ? args : [...args, '--no-autotune'], (line) => output.push(line)).done;
    const [record] = code === 0 ? await readHistory(run) : [];
    if (!record) throw new Error(`train exited with ${code}: ${output.slice(-5).join('\n')}`);
    return { seconds: record.seconds, testAccuracy: evaluationOf(record).accuracy };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

/**
 * One epoch through the training loop in this process: for the GPU kit's bundle (bench/device), which has
 * no tsx or sources to start `train` with. Its process must hold little else (see the top of the file).
 */
export function inProcessEpochs(): EpochRunner {
  let data: Promise<{ train: Dataset; test: Dataset }> | undefined;
  return async (model, threads, autotune) => {
    data ??= Promise.all([loadMnist('train'), loadMnist('test')]).then(([train, test]) => ({ train, test }));
    const dir = await mkdtemp(join(tmpdir(), 'bench-epoch-'));
    try {
      const config = { ...TUTORIAL_RECIPE, model, epochs: 1, threads };
      const [record] = await trainRun({ config, dir, data: await data, autotune });
      if (!record) throw new Error('the epoch recorded nothing');
      return { seconds: record.seconds, testAccuracy: evaluationOf(record).accuracy };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}

export async function benchEpoch(o: EpochBenchOptions): Promise<BenchReport> {
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      const ours: EpochResult[] = [];
      const theirs = new TorchRounds<TorchEpoch>(torchConfigs(threads));
      for (let r = 0; r < o.rounds; r++) {
        ours.push(await (o.runEpoch ?? trainEpoch)(model, threads, o.autotune));
        if (o.torch) theirs.measure((config) => torchEpoch(model, config));
      }
      const mid = (xs: EpochResult[]) => ({
        seconds: median(xs.map((x) => x.seconds)),
        testAccuracy: median(xs.map((x) => x.testAccuracy)),
      });
      const kept = o.torch ? theirs.keep((x) => x.seconds, 'lower') : undefined;
      const torch = kept && { ...mid(kept.results), ranWith: kept.threads, tried: kept.tried };
      const row: Row = { model, threads, ours: mid(ours), torch };
      rows.push(row);
      console.log(
        `${model.padEnd(20)} ${threads} thread(s): ours ${row.ours.seconds.toFixed(1)} s (${row.ours.testAccuracy}%)` +
          (row.torch
            ? `   PyTorch ${row.torch.seconds.toFixed(1)} s (${row.torch.testAccuracy}%, ${threadsLabel(row.torch.ranWith)})`
            : ''),
      );
    }
  }
  const markdown = [
    `# One epoch of the tutorial recipe on MNIST (median of ${o.rounds} alternating rounds)`,
    '',
    `SGD lr 0.01 momentum 0.5, batch 64, 60,000 images; seconds of training (evaluation excluded). ${new Date().toISOString().slice(0, 10)}.`,
    '',
    o.torch
      ? "PyTorch: its own loop (bench/torch_epoch.py), torch.set_num_threads(our thread count). With more than one thread each round ran it twice, OpenBLAS's pool at the same count and at 1 thread (OPENBLAS_NUM_THREADS), and each row keeps the faster median: 'PyTorch ran with' is that configuration as the process reported it; both medians are in the JSON."
      : 'PyTorch: not run.',
    '',
    '| model | threads | ours s | PyTorch s | PyTorch / ours | ours test % | PyTorch test % | PyTorch ran with |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.ours.seconds.toFixed(1)} | ${r.torch?.seconds.toFixed(1) ?? '–'} | ${r.torch ? `${(r.torch.seconds / r.ours.seconds).toFixed(2)}×` : '–'} | ${r.ours.testAccuracy.toFixed(2)} | ${r.torch?.testAccuracy.toFixed(2) ?? '–'} | ${r.torch ? threadsLabel(r.torch.ranWith) : '–'} |`,
    ),
    '',
  ].join('\n');
  return { kind: 'epoch', markdown, json: { rounds: o.rounds, rows } };
}
