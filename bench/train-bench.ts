/**
 * `npm run bench -- --what train`: training throughput per model and thread count. With Debian's PyTorch
 * installed, PyTorch's step runs in alternation with ours (same machine, same moment) and the table shows
 * ours / PyTorch of the medians, and each side's step / forward: how many inference passes of the same model
 * (same batch and threads) one training step costs.
 */

import type { ModelName } from '../core/model/zoo/index.ts';
import type { Parallelism } from '../train/parallel/create-trainer.ts';
import { ourForwardThroughput } from './infer-throughput.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { type TorchInfo, type TorchTraining, torchTrainingThroughput } from './torch.ts';
import { type KeptConfig, TorchRounds, type TorchThreads, threadsLabel, torchConfigs } from './torch-config.ts';
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

interface TorchSide {
  imagesPerSecond: number;
  ratio: number;
  /** The settings of the configuration kept (the faster median), as the process reported them. */
  ranWith: TorchThreads;
  stepPerForward: number;
  tried: KeptConfig['tried'];
}

interface Row {
  model: string;
  threads: number;
  ours: number;
  /** How our step ran: one session, or N data-parallel workers (with > 1 thread, both are measured). */
  mode: string;
  /** Our step's time / the exported model's forward time (one session, same batch and threads). */
  stepPerForward: number;
  torch?: TorchSide;
}

export async function benchTrain(o: TrainBenchOptions): Promise<BenchReport> {
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      // With more than one thread, both ways of using them: one session (the default) and worker threads.
      const modes: (Parallelism | undefined)[] = threads > 1 ? ['session', 'workers'] : [undefined];
      const ours = modes.map(() => [] as number[]);
      const labels = modes.map(() => '');
      const forward: number[] = [];
      const theirs = new TorchRounds<TorchTraining>(torchConfigs(threads));
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
        forward.push(await ourForwardThroughput(model, threads, o.batch, o.seconds));
        if (o.torch) theirs.measure((config) => torchTrainingThroughput(model, config, o.batch, o.seconds));
      }
      const kept = o.torch ? theirs.keep((x) => x.imagesPerSecond, 'higher') : undefined;
      for (const [i, mode] of labels.entries()) {
        const imagesPerSecond = median(ours[i] ?? []);
        const row: Row = {
          model,
          threads,
          mode,
          ours: imagesPerSecond,
          stepPerForward: median(forward) / imagesPerSecond,
        };
        if (kept)
          row.torch = {
            imagesPerSecond: kept.value,
            ratio: imagesPerSecond / kept.value,
            ranWith: kept.threads,
            stepPerForward: median(kept.results.map((x) => x.forwardImagesPerSecond)) / kept.value,
            tried: kept.tried,
          };
        rows.push(row);
        console.log(
          `${model.padEnd(20)} ${threads} thread(s) [${mode}]: ours ${imagesPerSecond.toFixed(0).padStart(6)} img/s, step/forward ${row.stepPerForward.toFixed(1)}` +
            (row.torch
              ? `   PyTorch ${row.torch.imagesPerSecond.toFixed(0).padStart(6)} img/s (${threadsLabel(row.torch.ranWith)}), step/forward ${row.torch.stepPerForward.toFixed(1)}   ratio ${row.torch.ratio.toFixed(2)}×`
              : ''),
        );
      }
    }
  }
  const markdown = [
    `# Training throughput, batch ${o.batch}, images/s (median of ${o.rounds} alternating rounds of ${o.seconds} s)`,
    '',
    `Ours: per-shape autotuning ${o.autotune ? 'on' : 'off'}. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    o.torch
      ? "PyTorch: torch.set_num_threads(our thread count). With more than one thread each round ran it twice, OpenBLAS's pool at the same count and at 1 thread (OPENBLAS_NUM_THREADS), and each row keeps the faster median: 'PyTorch ran with' is that configuration as the process reported it; both medians are in the JSON."
      : 'PyTorch: not run.',
    '',
    "Step / forward: one training step's time divided by the same model's inference time at the same batch and threads (ours: the exported ONNX model in one ORT session; PyTorch: eval-mode forward in the same process and settings). A backward pass has about twice a forward's arithmetic, so about 3 is what the arithmetic suggests; much more on one side than the other says where that side's step loses time (backward, update, or the data-parallel exchange).",
    '',
    '| model | threads | ours: how | ours | PyTorch | ours / PyTorch | PyTorch ran with | step / forward: ours | step / forward: PyTorch |',
    '|---|---:|---|---:|---:|---:|---|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.mode} | ${r.ours.toFixed(0)} | ${r.torch?.imagesPerSecond.toFixed(0) ?? '–'} | ${r.torch ? `${r.torch.ratio.toFixed(2)}×` : '–'} | ${r.torch ? threadsLabel(r.torch.ranWith) : '–'} | ${r.stepPerForward.toFixed(1)} | ${r.torch?.stepPerForward.toFixed(1) ?? '–'} |`,
    ),
    '',
  ].join('\n');
  const json = { batch: o.batch, rounds: o.rounds, seconds: o.seconds, autotune: Boolean(o.autotune), rows };
  return { kind: 'train', markdown, json };
}
