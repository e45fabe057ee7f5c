/**
 * Triton's metric names beside ours, so Triton dashboards and alerts work unchanged: nv_inference_* per
 * `model` and `version`, read at scrape time from the served versions' statistics (inference-stats.ts).
 * Label values are only ever the names and versions being served — never a name a client sent — and a
 * version that is unloaded or replaced drops out, so the series stay bounded.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { InferenceStats } from './inference-stats.ts';
import type { ServedVersion } from './served-version.ts';

const LABELS = ['model', 'version'] as const;

/** Counter name → help and the value it reads (Triton's durations are microseconds). */
const COUNTERS: Record<string, [string, (s: InferenceStats) => number]> = {
  nv_inference_request_success: ['Number of successful inference requests, all batch sizes', (s) => s.success.count],
  nv_inference_request_failure: ['Number of failed inference requests, all batch sizes', (s) => s.fail.count],
  nv_inference_count: ['Number of inferences performed (images of successful requests)', (s) => s.inferenceCount],
  nv_inference_exec_count: ['Number of model executions performed (batches)', (s) => s.executionCount],
  nv_inference_request_duration_us: [
    'Cumulative inference request duration in microseconds',
    (s) => Math.round(s.success.ns / 1000),
  ],
  nv_inference_queue_duration_us: [
    'Cumulative inference queuing duration in microseconds',
    (s) => Math.round(s.queue.ns / 1000),
  ],
  nv_inference_compute_input_duration_us: [
    'Cumulative compute input duration in microseconds',
    (s) => Math.round(s.computeInput.ns / 1000),
  ],
  nv_inference_compute_infer_duration_us: [
    'Cumulative compute inference duration in microseconds',
    (s) => Math.round(s.computeInfer.ns / 1000),
  ],
  nv_inference_compute_output_duration_us: [
    'Cumulative inference compute output duration in microseconds',
    (s) => Math.round(s.computeOutput.ns / 1000),
  ],
};

const labels = (v: ServedVersion) => ({ model: v.name, version: String(v.version) });

export function registerTritonMetrics(registry: Registry, served: () => ServedVersion[]): void {
  for (const [name, [help, read]] of Object.entries(COUNTERS))
    new Counter({
      name,
      help,
      labelNames: LABELS,
      registers: [registry],
      collect() {
        this.reset(); // only what is served now
        for (const v of served()) this.inc(labels(v), read(v.stats));
      },
    });
  new Gauge({
    name: 'nv_inference_pending_request_count',
    help: 'Instantaneous number of pending requests awaiting execution per-model',
    labelNames: LABELS,
    registers: [registry],
    collect() {
      this.reset();
      for (const v of served()) this.set(labels(v), v.batcher.pending);
    },
  });
}
