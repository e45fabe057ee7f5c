/**
 * The main thread's handle on a session worker: start it (it loads our TypeScript through tsx's API —
 * `execArgv: ['--import', 'tsx']` doesn't reach worker threads here), run feeds, release.
 */
import { Worker } from 'node:worker_threads';
import type { SessionSettings } from '../../runtime/execution.ts';
import type { WireFeeds, WorkerReply } from './wire.ts';

const WORKER_FILE = new URL('./session-worker.ts', import.meta.url).href;
const TSX_API = import.meta.resolve('tsx/esm/api');
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then(({ tsImport }) => tsImport(workerData.file, workerData.file));
`;

export class WorkerSession {
  private pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) =>
      worker.on('exit', (code) => {
        this.fail(new Error(`a training worker exited (code ${code})`));
        resolve();
      }),
    );
  }

  /** Start a worker with its own session of `model`. */
  static async start(model: Uint8Array, settings: SessionSettings): Promise<WorkerSession> {
    const { onNotice: _, ...cloneable } = settings;
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { tsxApi: TSX_API, file: WORKER_FILE, model, settings: cloneable },
    });
    const handle = new WorkerSession(worker);
    const ready = await handle.next();
    if (ready.kind === 'error') {
      await worker.terminate();
      throw new Error(ready.message);
    }
    return handle;
  }

  /** Run the session on `feeds`; one run at a time per worker. */
  async run(feeds: WireFeeds): Promise<WireFeeds> {
    if (this.pending) throw new Error('internal: a worker session runs one batch at a time');
    const reply = this.next();
    this.worker.postMessage(feeds);
    const r = await reply;
    if (r.kind !== 'outputs') throw new Error(r.kind === 'error' ? r.message : 'internal: unexpected worker reply');
    return r.outputs;
  }

  /** Let the worker release its session and exit (terminated if it hasn't within a few seconds). */
  async release(): Promise<void> {
    this.failure ??= new Error('the worker session was released');
    this.worker.postMessage(null);
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  private next(): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  private settle(reply: WorkerReply): void {
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
