/**
 * `npm run bench -- --what infer`: each zoo model's inference ONNX model in ORT against the same network
 * in PyTorch eager (eval mode, inference_mode), alternating: batch-1 latency and batch-N throughput.
 */
import type { ModelName } from '../core/model/zoo/index.ts';
import { ourInferenceSpeed } from './infer-throughput.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { type TorchInference, type TorchInfo, torchInferenceSpeed } from './torch.ts';
import { type KeptConfig, TorchRounds, type TorchThreads, threadsLabel, torchConfigs } from './torch-config.ts';

export interface InferBenchOptions {
  models: ModelName[];
  threads: number[];
  batch: number;
  rounds: number;
  seconds: number;
  torch?: TorchInfo;
}

interface Row {
  model: string;
  threads: number;
  oursLatencyMs: number;
  oursImagesPerSecond: number;
  torchLatencyMs?: number;
  torchImagesPerSecond?: number;
  /** The PyTorch configurations kept for latency and for throughput (each the faster median), as reported. */
  torchRanWith?: { latency: TorchThreads; throughput: TorchThreads };
  torchTried?: { latency: KeptConfig['tried']; throughput: KeptConfig['tried'] };
}

export async function benchInfer(o: InferBenchOptions): Promise<BenchReport> {
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      const ours: { latencyMs: number; imagesPerSecond: number }[] = [];
      const theirs = new TorchRounds<TorchInference>(torchConfigs(threads));
      for (let r = 0; r < o.rounds; r++) {
        ours.push(await ourInferenceSpeed(model, threads, o.batch, o.seconds));
        if (o.torch) theirs.measure((config) => torchInferenceSpeed(model, config, o.batch, o.seconds));
      }
      const row: Row = {
        model,
        threads,
        oursLatencyMs: median(ours.map((x) => x.latencyMs)),
        oursImagesPerSecond: median(ours.map((x) => x.imagesPerSecond)),
      };
      if (o.torch) {
        const latency = theirs.keep((x) => x.latencyMs, 'lower');
        const throughput = theirs.keep((x) => x.imagesPerSecond, 'higher');
        row.torchLatencyMs = latency.value;
        row.torchImagesPerSecond = throughput.value;
        row.torchRanWith = { latency: latency.threads, throughput: throughput.threads };
        row.torchTried = { latency: latency.tried, throughput: throughput.tried };
      }
      rows.push(row);
      console.log(
        `${model.padEnd(20)} ${threads} thread(s): ours ${row.oursLatencyMs.toFixed(3)} ms, ${row.oursImagesPerSecond.toFixed(0)} img/s` +
          (o.torch
            ? `   PyTorch ${row.torchLatencyMs?.toFixed(3)} ms, ${row.torchImagesPerSecond?.toFixed(0)} img/s`
            : ''),
      );
    }
  }
  const speedup = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(2)}×` : '–');
  const ranWith = (r: Row) => {
    if (!r.torchRanWith) return '–';
    const [latency, throughput] = [threadsLabel(r.torchRanWith.latency), threadsLabel(r.torchRanWith.throughput)];
    return latency === throughput ? latency : `${latency} / ${throughput}`;
  };
  const markdown = [
    `# Inference: batch-1 latency and batch-${o.batch} throughput (median of ${o.rounds} alternating rounds of ${o.seconds} s)`,
    '',
    `Ours: the model's inference ONNX graph in onnxruntime-node. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    o.torch
      ? "PyTorch: eager, eval mode, torch.set_num_threads(our thread count). With more than one thread each round ran it twice, OpenBLAS's pool at the same count and at 1 thread (OPENBLAS_NUM_THREADS); latency and throughput each keep the faster median. 'PyTorch ran with' is that configuration as the process reported it (latency / throughput where they differ); both medians are in the JSON."
      : 'PyTorch: not run.',
    '',
    `| model | threads | ours ms | PyTorch ms | latency: PyTorch / ours | ours img/s | PyTorch img/s | throughput: ours / PyTorch | PyTorch ran with |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.oursLatencyMs.toFixed(3)} | ${r.torchLatencyMs?.toFixed(3) ?? '–'} | ${speedup(r.torchLatencyMs, r.oursLatencyMs)} | ${r.oursImagesPerSecond.toFixed(0)} | ${r.torchImagesPerSecond?.toFixed(0) ?? '–'} | ${speedup(r.oursImagesPerSecond, r.torchImagesPerSecond)} | ${ranWith(r)} |`,
    ),
    '',
  ].join('\n');
  const json = { batch: o.batch, rounds: o.rounds, seconds: o.seconds, rows };
  return { kind: 'infer', markdown, json };
}
