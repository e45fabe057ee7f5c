/**
 * The main thread's handle on a training worker (training-worker.ts): start it (it loads our TypeScript
 * through tsx's API — `execArgv: ['--import', 'tsx']` doesn't reach worker threads here), send a step,
 * await its reply, release. Steps and replies go through ports of their own, read synchronously once a
 * shared counter moves, so neither side sleeps through a small model's step.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { replyBox, requestBox, signal, signalled } from './shared-state.ts';
import type { StepReply } from './slice-runner.ts';
import type { TrainingWorkerData, WorkerStartup, WorkerStepRequest } from './training-worker.ts';

// Bundled into one .mjs per entry (the GPU kit, bench/device/pack.sh), the worker is a bundle of its own beside
// this one and loads without tsx.
const BUNDLED = import.meta.url.endsWith('.mjs');
const WORKER_FILE = new URL(BUNDLED ? './training-worker.mjs' : './training-worker.ts', import.meta.url).href;
const TSX_API = BUNDLED ? '' : import.meta.resolve('tsx/esm/api');
const BOOTSTRAP = BUNDLED
  ? `import(require('node:worker_threads').workerData.file);`
  : `
const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then(({ tsImport }) => tsImport(workerData.file, workerData.file));
`;

type Stepped = Extract<StepReply, { kind: 'stepped' }>;

export class WorkerHandle {
  private failure: Error | undefined;
  private readonly exited: Promise<void>;
  private repliesSeen = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly requests: MessagePort,
    private readonly replies: MessagePort,
    private readonly index: number,
    private readonly control: Int32Array,
    onExit: () => void,
  ) {
    worker.on('error', (error) => {
      this.failure ??= error;
    });
    this.exited = new Promise((resolve) =>
      worker.on('exit', (code) => {
        this.failure ??= new Error(`a training worker exited (code ${code})`);
        requests.close();
        replies.close();
        onExit();
        resolve();
      }),
    );
  }

  /** Start a worker; `onExit` is told when it is gone (so the others stop waiting for it). */
  static async start(
    data: Omit<TrainingWorkerData, 'requests' | 'replies'>,
    onExit: () => void,
  ): Promise<WorkerHandle> {
    const requests = new MessageChannel();
    const replies = new MessageChannel();
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { ...data, requests: requests.port2, replies: replies.port2, tsxApi: TSX_API, file: WORKER_FILE },
      transferList: [requests.port2, replies.port2],
    });
    // Its one message on the parent port: whether its sessions loaded.
    const started = new Promise<WorkerStartup>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`a training worker exited (code ${code})`)));
    });
    const control = new Int32Array(data.shared.control);
    const handle = new WorkerHandle(worker, requests.port1, replies.port1, data.index, control, onExit);
    const startup = await started;
    if (startup.kind === 'error') {
      await worker.terminate();
      throw new Error(startup.message);
    }
    return handle;
  }

  /** Send one step's slice; collect it with `reply()` (one step at a time per worker). */
  post(request: WorkerStepRequest): void {
    if (this.failure) throw this.failure;
    this.send(request);
  }

  /** The posted step's result: spins a moment on the reply counter, then sleeps. */
  async reply(): Promise<Stepped> {
    try {
      this.repliesSeen = await signalled(this.control, replyBox(this.index), this.repliesSeen, () => !!this.failure);
    } catch (error) {
      throw this.failure ?? error;
    }
    const r = receiveMessageOnPort(this.replies)?.message as StepReply | undefined;
    if (!r) throw new Error('internal: a training worker signalled a reply it did not send');
    if (r.kind !== 'stepped') throw new Error(r.message);
    return r;
  }

  /** Let the worker release its sessions and exit (terminated if it hasn't within a few seconds). */
  async release(): Promise<void> {
    this.failure ??= new Error('the training worker was released');
    this.send(null);
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  private send(request: WorkerStepRequest | null): void {
    this.requests.postMessage(request);
    signal(this.control, requestBox(this.index));
  }
}
