/**
 * `npm run bench -- --what epoch`: one epoch of the tutorial's recipe on real MNIST (SGD lr 0.01,
 * momentum 0.5, batch 64) — ours through the training loop (`npm run train -- --epochs 1`), PyTorch's
 * through bench/torch_epoch.py — alternating, with the test accuracy each reached.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelName } from '../core/model/zoo/index.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { loadMnist } from '../node/mnist.ts';
import { trainRun } from '../train/loop.ts';
import { evaluationOf } from '../train/run-dir.ts';
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

export async function benchEpoch(o: EpochBenchOptions): Promise<BenchReport> {
  const data = { train: await loadMnist('train'), test: await loadMnist('test') };
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      const ours: EpochResult[] = [];
      const theirs = new TorchRounds<TorchEpoch>(torchConfigs(threads));
      for (let r = 0; r < o.rounds; r++) {
        const dir = await mkdtemp(join(tmpdir(), 'bench-epoch-'));
        try {
          const config = { ...TUTORIAL_RECIPE, model, epochs: 1, threads };
          const [record] = await trainRun({ config, dir, data, autotune: o.autotune });
          if (record) ours.push({ seconds: record.seconds, testAccuracy: evaluationOf(record).accuracy });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
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
