/** `npm run bench -- --what serve`: loopback HTTP load on /predict, with and without dynamic batching. */
import type { BenchReport } from './report.ts';
import { serveLoad } from './serve-load.ts';

export async function benchServe(seconds: number): Promise<BenchReport> {
  const { rows, inProcessMs } = await serveLoad([1, 16, 64], seconds);
  const markdown = [
    '# Inference server: POST /predict (JSON pixels), simple CNN, loopback',
    '',
    `autocannon, ${seconds} s per row; server in its own process, 1 ORT thread. In-process ORT batch-1 latency: ${inProcessMs.toFixed(3)} ms.`,
    '',
    '| batching | body | images/request | connections | requests/s | predictions/s | p50 ms | p99 ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.batching ? 'on (≤64, 1 ms)' : 'off'} | ${r.binary ? 'float32' : 'JSON'} | ${r.imagesPerRequest} | ${r.connections} | ${r.requestsPerSecond.toFixed(0)} | ${(r.requestsPerSecond * r.imagesPerRequest).toFixed(0)} | ${r.p50} | ${r.p99} |`,
    ),
    '',
  ].join('\n');
  return { kind: 'serve', markdown, json: { seconds, inProcessMs, rows } };
}
