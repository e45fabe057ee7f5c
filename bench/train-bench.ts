/**
 * `npm run bench -- --what train`: training throughput per model and thread count. With Debian's PyTorch
 * installed, PyTorch's step runs in alternation with ours (same machine, same moment) and the table shows
 * ours / PyTorch of the medians.
 */
import { cpus } from 'node:os';
import type { Parallelism } from '../train/parallel/create-trainer.ts';
import type { ModelName } from '../train/zoo/index.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { blasLabel, type TorchInfo, torchTrainingThroughput } from './torch.ts';
import { ourTrainingThroughput } from './train-throughput.ts';

export interface TrainBenchOptions {
  models: ModelName[];
  threads: number[];
  batch: number;
  rounds: number;
  seconds: number;
  /** PyTorch to run side by side, if any. */
  torch?: TorchInfo;
  /** As `train`: autotuned worker steps unless false. */
  autotune: { cacheDir: string } | false;
}

interface Row {
  model: string;
  threads: number;
  ours: number;
  /** How our step ran: one session, or N data-parallel workers (with > 1 thread, both are measured). */
  mode: string;
  torch?: number;
  ratio?: number;
}

export async function benchTrain(o: TrainBenchOptions): Promise<BenchReport> {
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      // With more than one thread, both ways of using them: one session (the default) and worker threads.
      const modes: (Parallelism | undefined)[] = threads > 1 ? ['session', 'workers'] : [undefined];
      const ours = modes.map(() => [] as number[]);
      const labels = modes.map(() => '');
      const theirs: number[] = [];
      for (let r = 0; r < o.rounds; r++) {
        for (const [i, parallelism] of modes.entries()) {
          const result = await ourTrainingThroughput({
            model,
            threads,
            batch: o.batch,
            seconds: o.seconds,
            parallelism,
            autotune: o.autotune,
          });
          ours[i]?.push(result.imagesPerSecond);
          labels[i] = result.mode;
        }
        if (o.torch) theirs.push(torchTrainingThroughput(model, threads, o.batch, o.seconds));
      }
      for (const [i, mode] of labels.entries()) {
        const row: Row = { model, threads, mode, ours: median(ours[i] ?? []) };
        if (o.torch) {
          row.torch = median(theirs);
          row.ratio = row.ours / row.torch;
        }
        rows.push(row);
        console.log(
          `${model.padEnd(20)} ${threads} thread(s) [${mode}]: ours ${row.ours.toFixed(0).padStart(6)} img/s` +
            (row.torch && row.ratio
              ? `   PyTorch ${row.torch.toFixed(0).padStart(6)} img/s   ratio ${row.ratio.toFixed(2)}×`
              : ''),
        );
      }
    }
  }
  const torchLine = o.torch ? `PyTorch ${o.torch.version} with ${blasLabel(o.torch)}` : 'PyTorch: not run';
  const markdown = [
    `# Training throughput, batch ${o.batch}, images/s (median of ${o.rounds} alternating rounds of ${o.seconds} s)`,
    '',
    `Machine: ${cpus().length} cores. Workers: per-shape autotuning ${o.autotune ? 'on' : 'off'}. ${torchLine}. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| model | threads | ours: how | ours | PyTorch | ours / PyTorch |',
    '|---|---:|---|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.mode} | ${r.ours.toFixed(0)} | ${r.torch?.toFixed(0) ?? '–'} | ${r.ratio ? `${r.ratio.toFixed(2)}×` : '–'} |`,
    ),
    '',
  ].join('\n');
  const json = {
    batch: o.batch,
    rounds: o.rounds,
    seconds: o.seconds,
    autotune: Boolean(o.autotune),
    torch: o.torch,
    rows,
  };
  return { kind: 'train', markdown, json };
}
