/**
 * A training worker thread: a SliceRunner (slice-runner.ts) fed by the main thread. It waits for steps on
 * the shared request counter (spinning a moment first, so a step of a small model starts at once), reads
 * each from its request port synchronously, and replies with the result.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { IMAGE_PIXELS } from '../../core/contract.ts';
import { replyBox, requestBox, type SharedInputBuffers, signal, signalled } from './shared-state.ts';
import { type RunnerData, type SlicePiece, SliceRunner, type StepReply, type StepRequest } from './slice-runner.ts';

export interface TrainingWorkerData extends RunnerData {
  /** Where steps arrive (read synchronously when the request counter moves). */
  requests: MessagePort;
  /** Where replies go (the main thread reads them when the reply counter moves). */
  replies: MessagePort;
}

/** The worker's one message on its parent port: whether its sessions loaded. */
export type WorkerStartup = { kind: 'ready' } | { kind: 'error'; message: string };

/** A step as it reaches a worker: its range of the batch in the shared inputs, and its pieces of that range. */
export interface WorkerStepRequest extends Omit<StepRequest, 'pieces'> {
  start: number;
  count: number;
  pieces: (Omit<SlicePiece, 'images' | 'labels'> & { offset: number; count: number })[];
  /** New shared input buffers (the batch outgrew the old ones). */
  inputs?: SharedInputBuffers;
}

const data = workerData as TrainingWorkerData;
const port = parentPort;
if (!port) throw new Error('training-worker.ts runs as a worker thread');
const control = new Int32Array(data.shared.control);
const announce = (message: WorkerStartup) => port.postMessage(message);
const reply = (message: StepReply) => {
  data.replies.postMessage(message);
  signal(control, replyBox(data.index));
};

let runner: SliceRunner | undefined;
try {
  runner = await SliceRunner.create(data);
  announce({ kind: 'ready' });
} catch (error) {
  announce({ kind: 'error', message: (error as Error).message });
}

// A pending Atomics.waitAsync doesn't keep a thread alive; this does, until the worker is released.
const keepAlive = setInterval(() => {}, 1 << 30);
// ORT can't read shared memory: the worker's range is copied into these (grown, never shrunk).
let shared: { images: Float32Array<ArrayBufferLike>; labels: BigInt64Array<ArrayBufferLike> } = {
  images: new Float32Array(0),
  labels: new BigInt64Array(0),
};
let local = { images: new Float32Array(0), labels: new BigInt64Array(0) };

function fromShared(request: WorkerStepRequest): StepRequest {
  if (request.inputs)
    shared = { images: new Float32Array(request.inputs.images), labels: new BigInt64Array(request.inputs.labels) };
  const { start, count } = request;
  if (local.labels.length < count)
    local = { images: new Float32Array(count * IMAGE_PIXELS), labels: new BigInt64Array(count) };
  local.images.set(shared.images.subarray(start * IMAGE_PIXELS, (start + count) * IMAGE_PIXELS));
  local.labels.set(shared.labels.subarray(start, start + count));
  const pieces = request.pieces.map(({ offset, count: n, masks, weight }) => ({
    images: local.images.subarray(offset * IMAGE_PIXELS, (offset + n) * IMAGE_PIXELS),
    labels: local.labels.subarray(offset, offset + n),
    masks,
    weight,
  }));
  return { pieces, shares: request.shares, lr: request.lr, step: request.step };
}

let seen = 0;
for (;;) {
  seen = await signalled(control, requestBox(data.index), seen);
  const request = receiveMessageOnPort(data.requests)?.message as WorkerStepRequest | null | undefined;
  if (request === undefined) continue;
  if (request === null) break;
  reply(runner ? await runner.step(fromShared(request)) : { kind: 'error', message: 'the worker has no session' });
}
await runner?.release();
clearInterval(keepAlive);
data.requests.close();
data.replies.close();
port.close();
