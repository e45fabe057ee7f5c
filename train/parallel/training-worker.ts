/**
 * A training worker thread: a SliceRunner (slice-runner.ts) fed by the main thread. It waits for steps on
 * the shared request counter (spinning a moment first, so a step of a small model starts at once), reads
 * each from its request port synchronously, and replies with the result.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { requestSignalled } from './shared-state.ts';
import { type RunnerData, SliceRunner, type StepReply, type StepRequest } from './slice-runner.ts';

export interface TrainingWorkerData extends RunnerData {
  /** Where steps arrive (read synchronously when the request counter moves). */
  requests: MessagePort;
}

export type TrainingWorkerReply = { kind: 'ready' } | StepReply;

const data = workerData as TrainingWorkerData;
const port = parentPort;
if (!port) throw new Error('training-worker.ts runs as a worker thread');
const reply = (message: TrainingWorkerReply) => port.postMessage(message);
const control = new Int32Array(data.shared.control);

let runner: SliceRunner | undefined;
try {
  runner = await SliceRunner.create(data);
  reply({ kind: 'ready' });
} catch (error) {
  reply({ kind: 'error', message: (error as Error).message });
}

// A pending Atomics.waitAsync doesn't keep a thread alive; this does, until the worker is released.
const keepAlive = setInterval(() => {}, 1 << 30);
let seen = 0;
for (;;) {
  seen = await requestSignalled(control, data.index, seen);
  const request = receiveMessageOnPort(data.requests)?.message as StepRequest | null | undefined;
  if (request === undefined) continue;
  if (request === null) break;
  reply(runner ? await runner.step(request) : { kind: 'error', message: 'the worker has no session' });
}
await runner?.release();
clearInterval(keepAlive);
data.requests.close();
port.close();
