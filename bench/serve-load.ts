/**
 * Loopback load on /predict (autocannon) at several concurrencies, with and without dynamic
 * batching, next to in-process ORT latency. The server runs in a child process (npm run serve), as
 * users run it; the model is the simple CNN with fresh weights (latency doesn't depend on them).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import { MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import { makeDeployable } from '../core/deploy/deployable.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { sessionOptions } from '../node/execution.ts';
import { writeModelFile } from '../node/files.ts';
import { modelPath } from '../node/repository.ts';
import { encodeModel } from '../onnx/codec.ts';
import { startServeProcess } from '../testkit/serve-process.ts';

export interface LoadRow {
  batching: boolean;
  /** Images per request ({"inputs": [...]} when > 1). */
  imagesPerRequest: number;
  /** Raw float32 body instead of JSON. */
  binary: boolean;
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
}

async function modelRepository(): Promise<{ root: string; bytes: Uint8Array }> {
  const root = mkdtempSync(join(tmpdir(), 'bench-models-'));
  const { model } = makeDeployable(inferenceModel(ZOO.cnn.build(), { seed: 0 }).model, {
    mean: MNIST_MEAN,
    std: MNIST_STD,
    metadata: {},
  });
  await writeModelFile(modelPath(root, 'cnn', 1), model);
  return { root, bytes: encodeModel(model) };
}

/** Mean batch-1 latency of an in-process ORT session, in ms. */
export async function inProcessLatency(bytes: Uint8Array, runs = 2000): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, sessionOptions('cpu', { threads: 1 }));
  const image = new Float32Array(784).fill(0.1);
  const feed = () => ({ input: new ort.Tensor('float32', image, [1, 1, 28, 28]) });
  for (let i = 0; i < 100; i++) await session.run(feed());
  const start = performance.now();
  for (let i = 0; i < runs; i++) await session.run(feed());
  const ms = (performance.now() - start) / runs;
  await session.release();
  return ms;
}

async function startServer(root: string, batching: boolean): Promise<{ url: string; stop: () => Promise<void> }> {
  const batchArgs = batching
    ? ['--max-batch', '64', '--batch-delay-ms', '1']
    : ['--max-batch', '1', '--batch-delay-ms', '0'];
  const { url, child } = await startServeProcess(['--models', root, ...batchArgs]);
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function serveLoad(
  connectionsList: number[],
  seconds: number,
): Promise<{ rows: LoadRow[]; inProcessMs: number }> {
  const { root, bytes } = await modelRepository();
  const image = Array.from({ length: 784 }, (_, i) => ((i * 7) % 13) / 13);
  const rows: LoadRow[] = [];
  for (const batching of [false, true]) {
    const server = await startServer(root, batching);
    try {
      const runs = connectionsList.map((connections) => ({ connections, imagesPerRequest: 1, binary: false }));
      if (batching)
        runs.push(
          { connections: 16, imagesPerRequest: 64, binary: false },
          { connections: 16, imagesPerRequest: 64, binary: true },
        );
      for (const { connections, imagesPerRequest, binary } of runs) {
        // binary: the same images as a raw float32 body (application/octet-stream), no JSON.
        const images = new Array(imagesPerRequest).fill(image);
        const body = binary
          ? Buffer.from(Float32Array.from(images.flat()).buffer)
          : JSON.stringify(imagesPerRequest === 1 ? { pixels: image } : { inputs: images });
        const result = await autocannon({
          url: `${server.url}/predict`,
          method: 'POST',
          headers: { 'content-type': binary ? 'application/octet-stream' : 'application/json' },
          body,
          connections,
          duration: seconds,
        });
        if (result.non2xx > 0 || result.errors > 0)
          throw new Error(`load run had ${result.non2xx} non-2xx answers and ${result.errors} errors`);
        rows.push({
          batching,
          imagesPerRequest,
          binary,
          connections,
          requestsPerSecond: result.requests.average,
          p50: result.latency.p50,
          p99: result.latency.p99,
        });
      }
    } finally {
      await server.stop();
    }
  }
  return { rows, inProcessMs: await inProcessLatency(bytes) };
}
