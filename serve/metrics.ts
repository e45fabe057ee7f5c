/** Prometheus metrics for one server instance (its own registry, so tests can run several). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'inference_batch_size',
      help: 'Images per ORT run (dynamic batching)',
      labelNames: ['model'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    loadFailures: new Counter({
      name: 'model_load_failures_total',
      help: 'Model files that failed to load',
      labelNames: ['model'] as const,
      registers: [registry],
    }),
    scanErrors: new Counter({
      name: 'model_repository_scan_errors_total',
      help: 'Entries of the model repository that could not be read, by cause (each logged once)',
      labelNames: ['cause'] as const,
      registers: [registry],
    }),
    bodyBytes: new Gauge({
      name: 'http_request_body_budget_bytes',
      help: "Bytes of request bodies being read, past each body's free part (bounded in all and per client address)",
      registers: [registry],
    }),
    bodiesWaiting: new Gauge({
      name: 'http_request_bodies_waiting',
      help: 'Request bodies waiting for memory to be read further',
      registers: [registry],
    }),
    uploadBytes: new Gauge({
      name: 'http_upload_body_budget_bytes',
      help: 'Bytes of model uploads being read (their own budget, with --allow-upload)',
      registers: [registry],
    }),
    modelFailures: new Counter({
      name: 'model_failures_total',
      help: 'Requests failed by their model: over the run budget, a crashed runner, or the wrong number of rows',
      registers: [registry],
    }),
    nonFiniteOutputs: new Counter({
      name: 'model_nonfinite_outputs_total',
      help: 'Requests refused because the model answered with NaN or infinity',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
