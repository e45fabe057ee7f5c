/**
 * `npm run bench -- --what infer`: each zoo model's inference ONNX model in ORT against the same network
 * in PyTorch eager (eval mode, inference_mode), alternating: batch-1 latency and batch-N throughput.
 */
import { cpus } from 'node:os';
import type { ModelName } from '../train/zoo/index.ts';
import { ourInferenceSpeed } from './infer-throughput.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';
import { blasLabel, type TorchInfo, torchInferenceSpeed } from './torch.ts';

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
}

export async function benchInfer(o: InferBenchOptions): Promise<BenchReport> {
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const threads of o.threads) {
      const ours: { latencyMs: number; imagesPerSecond: number }[] = [];
      const theirs: { latencyMs: number; imagesPerSecond: number }[] = [];
      for (let r = 0; r < o.rounds; r++) {
        ours.push(await ourInferenceSpeed(model, threads, o.batch, o.seconds));
        if (o.torch) theirs.push(torchInferenceSpeed(model, threads, o.batch, o.seconds));
      }
      const row: Row = {
        model,
        threads,
        oursLatencyMs: median(ours.map((x) => x.latencyMs)),
        oursImagesPerSecond: median(ours.map((x) => x.imagesPerSecond)),
      };
      if (o.torch) {
        row.torchLatencyMs = median(theirs.map((x) => x.latencyMs));
        row.torchImagesPerSecond = median(theirs.map((x) => x.imagesPerSecond));
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
  const torchLine = o.torch ? `PyTorch ${o.torch.version} eager with ${blasLabel(o.torch)}` : 'PyTorch: not run';
  const markdown = [
    `# Inference: batch-1 latency and batch-${o.batch} throughput (median of ${o.rounds} alternating rounds of ${o.seconds} s)`,
    '',
    `Machine: ${cpus().length} cores. Ours: the model's inference ONNX graph in onnxruntime-node. ${torchLine}. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `| model | threads | ours ms | PyTorch ms | latency: PyTorch / ours | ours img/s | PyTorch img/s | throughput: ours / PyTorch |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.oursLatencyMs.toFixed(3)} | ${r.torchLatencyMs?.toFixed(3) ?? '–'} | ${speedup(r.torchLatencyMs, r.oursLatencyMs)} | ${r.oursImagesPerSecond.toFixed(0)} | ${r.torchImagesPerSecond?.toFixed(0) ?? '–'} | ${speedup(r.oursImagesPerSecond, r.torchImagesPerSecond)} |`,
    ),
    '',
  ].join('\n');
  const json = { batch: o.batch, rounds: o.rounds, seconds: o.seconds, torch: o.torch, rows };
  return { kind: 'infer', markdown, json };
}
