/**
 * A model's runner process: holds one model version's ORT session, so a run that takes long (or never
 * ends, or crashes ORT) stalls or kills this process only, never the server's event loop. The server
 * (model-runner.ts) kills it when a run is over its budget. Started with an IPC channel; the first
 * message is the load request.
 */

import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { createSession } from '../../node/execution.ts';
import { readRegularFile } from '../../node/regular-file.ts';
import { decodeModel } from '../../onnx/codec.ts';
import { describeModel } from '../../onnx/describe.ts';
import { assertOneReading } from '../../onnx/one-reading.ts';
import { boundedMetadata } from '../model-metadata.ts';
import { checkExternalData, externalDataLocations } from './external-data.ts';
import { MAX_OUTPUT_VALUES_PER_IMAGE } from './limits.ts';
import type { FromRunner, LoadRequest, RunRequest, ToRunner } from './protocol.ts';

let session: ort.InferenceSession | undefined;

const reply = (message: FromRunner) => process.send?.(message);
const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0] ?? '';

async function load(request: LoadRequest): Promise<void> {
  const bytes = await readRegularFile(request.path, request.maxBytes);
  if (createHash('sha256').update(bytes).digest('hex') !== request.sha256)
    throw new Error('model.onnx changed while it was being loaded');
  const model = decodeModel(bytes);
  assertOneReading(bytes); // what we check below must be what ORT reads
  const info = describeModel(model);
  const dir = dirname(request.path);
  checkExternalData(externalDataLocations(model), dir);
  // ORT resolves external data against the working directory: make that the version folder.
  process.chdir(dir);
  const created = await createSession(bytes, { device: request.device, threads: request.threads });
  session = created.session;
  // Only what the server keeps crosses: a file's megabytes of metadata stay here.
  reply({ type: 'loaded', info: { ...info, metadata: boundedMetadata(info.metadata) }, provider: created.provider });
}

async function run(request: RunRequest): Promise<void> {
  if (!session) throw new Error('no model loaded');
  const feeds = { [request.input]: new ort.Tensor('float32', request.data, request.dims) };
  const results = await session.run(feeds, request.outputs);
  const outputs: Record<string, Float32Array> = {};
  let values = 0;
  for (const name of request.outputs) {
    const tensor = results[name];
    if (tensor?.type !== 'float32') throw new Error(`output ${name} is not float32`);
    outputs[name] = tensor.data as Float32Array;
    values += tensor.data.length;
  }
  // Checked here, before the values are copied to the server (a probe's 800 MB output took it to 2.4 GB
  // when the limit was applied there), and on every run: an input the load probe never tried may give more.
  const images = Math.max(1, request.dims[0] ?? 1);
  if (values > images * MAX_OUTPUT_VALUES_PER_IMAGE)
    throw new Error(
      `the outputs give ${Math.ceil(values / images)} values per image; this server answers at most ${MAX_OUTPUT_VALUES_PER_IMAGE}`,
    );
  reply({ type: 'result', id: request.id, outputs });
}

process.on('message', (message: ToRunner) => {
  const work = message.type === 'load' ? load(message) : run(message);
  work.catch((error) =>
    reply({ type: 'error', id: message.type === 'run' ? message.id : undefined, message: firstLine(error) }),
  );
});
// The server went away (or closed the channel): nothing is left to serve.
process.on('disconnect', () => process.exit(0));
// The server decides when this process ends: Ctrl-C (or systemd's stop) signals the whole process group,
// and a runner that died of it failed the runs the server was still draining (an outside attack: 16 HTTP
// and 16 gRPC requests 503 "runner process exited (SIGINT)", the model quarantined).
for (const stop of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(stop, () => {});
// A run that never ends blocks this event loop, so 'disconnect' can't be heard: a watchdog thread sees
// the parent go (the process is re-parented) and ends this process, so no orphan burns a core.
new Worker(
  `const { ppid } = process;
   setInterval(() => { if (process.ppid !== ppid) process.kill(process.pid, 'SIGKILL'); }, 1000).unref();
   setInterval(() => {}, 1 << 30);`,
  { eval: true },
).unref();
