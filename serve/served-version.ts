/**
 * One loaded model version: its ORT session in a runner process (runner/) behind a batcher, its checked
 * signature, and the exact bytes it was loaded from (the browser downloads those, never whatever is on
 * disk now). Requests hold a lease while they use it; a replaced or removed version is released only when
 * its last lease ends, so a hot reload never fails a request in flight. A run over its budget, or a
 * runner that crashes, quarantines the version (onQuarantine) until it is loaded again.
 */
import { IMAGE_PIXELS, IMAGE_SHAPE, normalizationFolded } from '../core/contract.ts';
import type { NodeDevice as Device, NodeProvider as Provider } from '../core/ort-runtime.ts';
import { checkBatchIndependence, verifiedSizes } from './batch-check.ts';
import { Batcher, concatRows, type Outputs } from './batcher.ts';
import { InferenceStats } from './inference-stats.ts';
import { ContractError, checkSignature, type ModelSignature } from './model-contract.ts';
import { boundedMetadata } from './model-metadata.ts';
import { MAX_SERVED_BATCH } from './runner/limits.ts';
import { budgetTimer, ModelFailedError, ModelRunner, type RunnerBudgets } from './runner/model-runner.ts';

export interface LoadSettings {
  device: Device;
  threads: number;
  maxBatch: number;
  /** The config's max_batch_size as written, if there is a config (model-config.ts ModelSettings). */
  declaredMaxBatch?: number;
  batchDelayMs: number;
  /** Images waiting for runs before requests are refused (at least the largest batch). */
  maxQueued?: number;
  budgets: RunnerBudgets;
  onBatch?: (size: number) => void;
  /** The version stopped working (over its run budget, crashed): why. */
  onQuarantine?: (reason: string) => void;
  /** Aborted: the load is abandoned (the server is stopping) and its runner process killed. */
  signal?: AbortSignal;
}

export class ServedVersion {
  private leases = 0;
  private retired = false;
  private released = false;
  /** Triton's statistics since this file was loaded (the batcher counts runs, the routes requests). */
  readonly stats = new InferenceStats();

  private constructor(
    readonly name: string,
    readonly version: number,
    readonly bytes: Uint8Array,
    readonly hash: string,
    readonly provider: Provider,
    readonly metadata: Record<string, string>,
    readonly signature: ModelSignature,
    /** Elements per image of each output. */
    readonly rowSizes: Record<string, number>,
    /** The largest batch one run takes (requests above it are refused). */
    readonly maxBatch: number,
    readonly batcher: Batcher,
    private readonly runner: ModelRunner,
  ) {}

  /** Models made elsewhere expect the tutorial's normalized input unless their metadata says otherwise. */
  get normalizesInput(): boolean {
    return !normalizationFolded(this.metadata);
  }

  /** The process this version runs in. */
  get runnerPid(): number | undefined {
    return this.runner.pid;
  }

  /**
   * Load `path` (whose contents are `bytes`) in a runner process, check the contract with real runs at
   * every batch size the batcher will use, within the load budget. Throws with a reason a user can act on.
   */
  static async load(
    name: string,
    version: number,
    path: string,
    bytes: Uint8Array,
    settings: LoadSettings,
    /** The bytes' SHA-256 (the runner checks the file it reads against it). */
    hash: string,
  ): Promise<ServedVersion> {
    if (settings.maxBatch > MAX_SERVED_BATCH)
      throw new ContractError(
        `max_batch_size ${settings.maxBatch} is over the ${MAX_SERVED_BATCH} this server runs (every size up to it is checked at load)`,
      );
    const started = performance.now();
    const runner = await ModelRunner.start(path, hash, settings, settings.budgets, settings.signal);
    const abandon = () => runner.stop('the server is stopping');
    settings.signal?.addEventListener('abort', abandon, { once: true });
    try {
      const signature = checkSignature(runner.info);
      // Triton refuses such a config at load; serving it, this server described the model as not batching.
      if (signature.staticBatchOne && (settings.declaredMaxBatch ?? 0) > 0)
        throw new ContractError(
          `config.pbtxt's max_batch_size ${settings.declaredMaxBatch} batches the model, but its input has a fixed first dimension of 1: for batching it must be free (-1); with max_batch_size 0 the model is served one image a run`,
        );
      const names = signature.outputs.map((o) => o.name);
      const runRows = async (images: Float32Array, count: number): Promise<Outputs> => {
        if (!signature.staticBatchOne) return runner.run(signature.input.name, images, [count, ...IMAGE_SHAPE], names);
        // A static batch of 1: one run per image, rows concatenated.
        const parts: Outputs[] = [];
        for (let i = 0; i < count; i++)
          parts.push(
            await runner.run(
              signature.input.name,
              images.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS),
              [1, ...IMAGE_SHAPE],
              names,
            ),
          );
        return Object.fromEntries(names.map((n) => [n, concatRows(parts.map((p) => p[n] as Float32Array))]));
      };
      const sizes = verifiedSizes(settings.maxBatch);
      const rowSizes = await withinBudget(
        checkBatchIndependence(signature, runRows, sizes),
        settings.budgets.loadMs - (performance.now() - started),
        runner,
      );
      const batcher = new Batcher(runRows, {
        maxBatch: settings.maxBatch,
        delayMs: settings.batchDelayMs,
        maxQueued: settings.maxQueued,
        rowSizes,
        imageSize: IMAGE_PIXELS,
        runSizes: signature.staticBatchOne ? undefined : sizes,
        onBatch: settings.onBatch,
        onRun: (size, timings) => served.stats.executed(size, timings),
      });
      const served = new ServedVersion(
        name,
        version,
        bytes,
        hash,
        runner.provider,
        boundedMetadata(runner.info.metadata),
        signature,
        rowSizes,
        settings.maxBatch,
        batcher,
        runner,
      );
      runner.onFailure = (reason) => settings.onQuarantine?.(reason);
      if (settings.signal?.aborted) throw new Error('the server is stopping');
      return served;
    } catch (error) {
      runner.stop();
      throw error;
    } finally {
      settings.signal?.removeEventListener('abort', abandon);
    }
  }

  /** Hold the version while a request uses it; call the returned function when done. */
  acquire(): () => void {
    this.leases++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.leases--;
      if (this.retired && this.leases === 0) void this.releaseSession();
    };
  }

  /** No new leases will come (replaced or removed): release the session once the last one ends. */
  retire(): Promise<void> {
    this.retired = true;
    return this.leases === 0 ? this.releaseSession() : Promise.resolve();
  }

  private releaseSession(): Promise<void> {
    if (!this.released) this.runner.stop();
    this.released = true;
    return Promise.resolve();
  }
}

/** `work`, or a failure once `ms` pass (the runner is stopped: whatever it was doing is abandoned). */
async function withinBudget<T>(work: Promise<T>, ms: number, runner: ModelRunner): Promise<T> {
  let cancel = () => {};
  const timeout = new Promise<never>((_, reject) => {
    cancel = budgetTimer(Math.max(0, ms), () => {
      runner.stop();
      reject(new ModelFailedError(`loading took over the load budget (checking the model's batches)`));
    });
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    cancel();
  }
}
