/**
 * Start the inference server: load the model repository, watch it, listen, and shut down gracefully
 * (stop accepting, let in-flight requests finish, release the sessions).
 *
 * @example
 * const server = await startServer({ models: 'models', port: 0 });
 * console.log(server.url); await server.close();
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Device } from '../runtime/execution.ts';
import { createApp } from './app.ts';
import { createMetrics } from './metrics.ts';
import { ModelRepository } from './repository.ts';

export interface ServerOptions {
  models: string;
  port?: number;
  host?: string;
  device?: Device;
  threads?: number;
  maxBatch?: number;
  batchDelayMs?: number;
  cors?: boolean;
  maxBodyBytes?: number;
  webRoot?: string;
  /** Rescan interval of the model repository in ms. */
  watchIntervalMs?: number;
  log?: (line: string) => void;
  /** Per-request log lines (off by default in tests). */
  requestLog?: boolean;
}

export interface RunningServer {
  url: string;
  port: number;
  repository: ModelRepository;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.log ?? (() => {});
  const metrics = createMetrics();
  const repository = new ModelRepository(options.models, {
    device: options.device,
    threads: options.threads,
    maxBatch: options.maxBatch,
    batchDelayMs: options.batchDelayMs,
    log,
    onBatch: (model, size) => metrics.batchSize.observe({ model }, size),
    onLoadFailure: (model) => metrics.loadFailures.inc({ model }),
  });
  await repository.scan();
  repository.watch(options.watchIntervalMs ?? 1000);
  const app = createApp({
    repository,
    metrics,
    cors: options.cors,
    maxBodyBytes: options.maxBodyBytes,
    webRoot: options.webRoot,
    log: options.requestLog ? log : undefined,
  });
  const host = options.host ?? '127.0.0.1';
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 8080, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    repository,
    close() {
      closing ??= new Promise<void>((resolve) => server.close(() => resolve())).then(() => repository.close());
      return closing;
    },
  };
}

/**
 * Call `stop` on the first SIGINT or SIGTERM; a second one exits at once. The listeners stay
 * registered (not `once`): a loader such as tsx re-raises a signal that finds no listener left.
 */
export function onStopSignal(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(130);
      stopping = true;
      void stop(signal);
    });
  }
}
