/**
 * The server's side of a runner process (process.ts): start it, load one model version in it, run
 * batches there with a time budget each. A run over budget, or a runner that dies (ORT crashed on a
 * hostile model), kills the process and fails that run and every later one with the reason: the
 * version is quarantined until it is loaded again. Killing a process is safe where terminating a
 * thread inside ORT's native run aborts the whole server.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { NodeDevice as Device, NodeProvider as Provider } from '../../core/ort-runtime.ts';
import type { ModelDescription } from '../../onnx/describe.ts';
import { runnerEntry } from './entry.ts';
import { MAX_MODEL_BYTES } from './limits.ts';
import type { FromRunner, ToRunner } from './protocol.ts';

export interface RunnerBudgets {
  /** Longest a load (read, check, session creation) may take, in ms. */
  loadMs: number;
  /** Longest one run may take, in ms. */
  runMs: number;
}

/** The model misbehaved (over its budget, crashed, or broke the contract at run time): not the client's fault. */
export class ModelFailedError extends Error {
  override name = 'ModelFailedError';
}

interface Waiting {
  resolve: (message: FromRunner) => void;
  reject: (error: Error) => void;
}

export class ModelRunner {
  private nextId = 1;
  private waiting: Waiting | undefined;
  /** Why the runner can't run any more (set once; every later call fails with it). */
  private failure: string | undefined;
  /** Told once when the runner fails (not when it is stopped). */
  onFailure: ((reason: string) => void) | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly budgets: RunnerBudgets,
    readonly info: ModelDescription,
    readonly provider: Provider,
  ) {}

  /**
   * Start a runner and load `path` (whose bytes hash to `sha256`) in it, within the load budget; `signal`
   * abandons the load (the process is killed).
   */
  static async start(
    path: string,
    sha256: string,
    settings: { device: Device; threads: number },
    budgets: RunnerBudgets,
    signal?: AbortSignal,
  ): Promise<ModelRunner> {
    const entry = await runnerEntry();
    if (signal?.aborted) throw new Error('the server is stopping');
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      serialization: 'advanced', // typed arrays cross as bytes, not as JSON lists
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    const abandon = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abandon, { once: true });
    let loaded: FromRunner;
    try {
      loaded = await exchange(
        child,
        { type: 'load', path, sha256, maxBytes: MAX_MODEL_BYTES, device: settings.device, threads: settings.threads },
        budgets.loadMs,
        `loading took over ${budgets.loadMs} ms (the load budget)`,
      );
    } catch (error) {
      child.kill('SIGKILL');
      throw signal?.aborted ? new Error('the server is stopping') : error;
    } finally {
      signal?.removeEventListener('abort', abandon);
    }
    if (loaded.type !== 'loaded') {
      child.kill('SIGKILL');
      throw new ModelFailedError(loaded.type === 'error' ? loaded.message : 'unexpected answer from the runner');
    }
    const runner = new ModelRunner(child, budgets, loaded.info, loaded.provider);
    child.on('exit', (code, signal) =>
      runner.fail(`the model's runner process exited (${signal ?? `code ${code}`}) during a run`),
    );
    child.on('message', (message: FromRunner) => runner.receive(message));
    // A send to a runner that just died emits 'error': without a listener that would end the server.
    child.on('error', () => runner.fail("the model's runner process is gone"));
    return runner;
  }

  /** The runner's process id (for operators' tools and the crash test). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** One run of `count` images; rejects with ModelFailedError past the run budget (and kills the runner). */
  run(input: string, data: Float32Array, dims: number[], outputs: string[]): Promise<Record<string, Float32Array>> {
    if (this.failure) return Promise.reject(new ModelFailedError(this.failure));
    if (this.waiting) return Promise.reject(new Error('a run is already in flight on this runner'));
    const id = this.nextId++;
    return new Promise<Record<string, Float32Array>>((resolve, reject) => {
      const cancel = budgetTimer(this.budgets.runMs, () =>
        this.fail(`a run took over ${this.budgets.runMs} ms (the run budget)`),
      );
      this.waiting = {
        resolve: (message) => {
          cancel();
          if (message.type === 'result' && message.id === id) resolve(message.outputs);
          else reject(new ModelFailedError(message.type === 'error' ? message.message : 'unexpected answer'));
        },
        reject: (error) => {
          cancel();
          reject(error);
        },
      };
      this.send({ type: 'run', id, input, data, dims, outputs });
    });
  }

  private send(message: ToRunner): void {
    try {
      this.child.send(message);
    } catch {
      this.fail("the model's runner process is gone");
    }
  }

  private receive(message: FromRunner): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(message);
  }

  /** Stop for good with `reason`: the process is killed and the run in flight fails with the reason. */
  private fail(reason: string): void {
    if (this.failure) return;
    this.failure = reason;
    this.child.kill('SIGKILL');
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(new ModelFailedError(reason));
    this.onFailure?.(reason);
  }

  /** End the runner (its version is no longer served, or its load was abandoned): a run in flight fails. */
  stop(reason = 'the version was unloaded'): void {
    this.failure ??= reason;
    this.child.removeAllListeners('exit');
    this.child.kill('SIGKILL');
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(new ModelFailedError(this.failure));
  }
}

/**
 * Call `expire` once `ms` have passed, unless the returned function cancels it first. When the timer fires,
 * the answer may be waiting unread behind a busy event loop (timers run before I/O): it looks again after
 * the I/O phase, so the server's own lag never counts against a model.
 */
export function budgetTimer(ms: number, expire: () => void): () => void {
  let cancelled = false;
  const timer = setTimeout(
    () =>
      setImmediate(() => {
        if (!cancelled) expire();
      }),
    ms,
  );
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/** Send one message and wait for the next one back, within `ms`. */
function exchange(child: ChildProcess, message: ToRunner, ms: number, timeoutReason: string): Promise<FromRunner> {
  return new Promise((resolve, reject) => {
    const done = () => {
      cancel();
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onExit);
    };
    const cancel = budgetTimer(ms, () => {
      done();
      reject(new ModelFailedError(timeoutReason));
    });
    const onMessage = (answer: FromRunner) => {
      done();
      resolve(answer);
    };
    const onExit = () => {
      done();
      reject(new ModelFailedError("the model's runner process exited while loading"));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.on('error', onExit);
    child.send(message);
  });
}
