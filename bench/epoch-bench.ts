/**
 * `npm run bench -- --what epoch`: one epoch of the tutorial's recipe on real MNIST (SGD lr 0.01,
 * momentum 0.5, batch 64) — ours through the training loop (`npm run train -- --epochs 1`), PyTorch's
 * through bench/torch_epoch.py — alternating, with the test accuracy each reached.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMnist, mnistDataDir } from '../runtime/data/mnist.ts';
import { trainRun } from '../train/loop.ts';
import { TUTORIAL_RECIPE } from '../train/run-config.ts';
import type { ModelName } from '../train/zoo/index.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { blasLabel, PYTHON, type TorchInfo } from './torch.ts';

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
  torch?: EpochResult;
}

export async function benchEpoch(o: EpochBenchOptions): Promise<BenchReport> {
  const data = { train: await loadMnist('train'), test: await loadMnist('test') };
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      const ours: EpochResult[] = [];
      const theirs: EpochResult[] = [];
      for (let r = 0; r < o.rounds; r++) {
        const dir = await mkdtemp(join(tmpdir(), 'bench-epoch-'));
        try {
          const config = { ...TUTORIAL_RECIPE, model, epochs: 1, threads };
          const [record] = await trainRun({ config, dir, data, autotune: o.autotune });
          if (record) ours.push({ seconds: record.seconds, testAccuracy: record.testAccuracy });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        if (o.torch) theirs.push(torchEpoch(model, threads));
      }
      const mid = (xs: EpochResult[]) => ({
        seconds: median(xs.map((x) => x.seconds)),
        testAccuracy: median(xs.map((x) => x.testAccuracy)),
      });
      const row: Row = { model, threads, ours: mid(ours), torch: o.torch ? mid(theirs) : undefined };
      rows.push(row);
      console.log(
        `${model.padEnd(20)} ${threads} thread(s): ours ${row.ours.seconds.toFixed(1)} s (${row.ours.testAccuracy}%)` +
          (row.torch ? `   PyTorch ${row.torch.seconds.toFixed(1)} s (${row.torch.testAccuracy}%)` : ''),
      );
    }
  }
  const torchLine = o.torch ? `PyTorch ${o.torch.version} with ${blasLabel(o.torch)}` : 'PyTorch: not run';
  const markdown = [
    `# One epoch of the tutorial recipe on MNIST (median of ${o.rounds} alternating rounds)`,
    '',
    `Machine: ${cpus().length} cores. SGD lr 0.01 momentum 0.5, batch 64, 60,000 images; seconds of training (evaluation excluded). ${torchLine}. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| model | threads | ours s | PyTorch s | PyTorch / ours | ours test % | PyTorch test % |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.ours.seconds.toFixed(1)} | ${r.torch?.seconds.toFixed(1) ?? '–'} | ${r.torch ? `${(r.torch.seconds / r.ours.seconds).toFixed(2)}×` : '–'} | ${r.ours.testAccuracy.toFixed(2)} | ${r.torch?.testAccuracy.toFixed(2) ?? '–'} |`,
    ),
    '',
  ].join('\n');
  return { kind: 'epoch', markdown, json: { rounds: o.rounds, torch: o.torch, rows } };
}

function torchEpoch(model: string, threads: number): EpochResult {
  const script = fileURLToPath(new URL('./torch_epoch.py', import.meta.url));
  const args = [script, '--data', mnistDataDir(), '--model', model, '--threads', String(threads)];
  const out = execFileSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as EpochResult;
}
