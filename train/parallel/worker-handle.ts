/**
 * The main thread's handle on a training worker (training-worker.ts): start it (it loads our TypeScript
 * through tsx's API — `execArgv: ['--import', 'tsx']` doesn't reach worker threads here), send a step,
 * await its reply, release. Steps go through a port of their own that the worker reads synchronously once
 * the shared request counter moves (so a spinning worker starts at once); replies come as messages.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { signalRequest } from './shared-state.ts';
import type { StepReply } from './slice-runner.ts';
import type { TrainingWorkerData, TrainingWorkerReply, WorkerStepRequest } from './training-worker.ts';

const WORKER_FILE = new URL('./training-worker.ts', import.meta.url).href;
const TSX_API = import.meta.resolve('tsx/esm/api');
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then(({ tsImport }) => tsImport(workerData.file, workerData.file));
`;

type Stepped = Extract<StepReply, { kind: 'stepped' }>;

export class WorkerHandle {
  private pending: { resolve: (r: TrainingWorkerReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    private readonly requests: MessagePort,
    private readonly index: number,
    private readonly control: Int32Array,
    onExit: () => void,
  ) {
    worker.on('message', (reply: TrainingWorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) =>
      worker.on('exit', (code) => {
        this.fail(new Error(`a training worker exited (code ${code})`));
        requests.close();
        onExit();
        resolve();
      }),
    );
  }

  /** Start a worker; `onExit` is told when it is gone (so the others stop waiting for it). */
  static async start(data: Omit<TrainingWorkerData, 'requests'>, onExit: () => void): Promise<WorkerHandle> {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { ...data, requests: port2, tsxApi: TSX_API, file: WORKER_FILE },
      transferList: [port2],
    });
    const handle = new WorkerHandle(worker, port1, data.index, new Int32Array(data.shared.control), onExit);
    const ready = await handle.next();
    if (ready.kind === 'error') {
      await worker.terminate();
      throw new Error(ready.message);
    }
    return handle;
  }

  /** Run one step's slice; one step at a time per worker. */
  async step(request: WorkerStepRequest): Promise<Stepped> {
    if (this.pending) throw new Error('internal: a training worker runs one step at a time');
    const reply = this.next();
    this.send(request);
    const r = await reply;
    if (r.kind !== 'stepped') throw new Error(r.kind === 'error' ? r.message : 'internal: unexpected worker reply');
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
    signalRequest(this.control, this.index);
  }

  private next(): Promise<TrainingWorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  private settle(reply: TrainingWorkerReply): void {
    const p = this.pending;
    this.pending = undefined;
    p?.resolve(reply);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(error);
  }
}
