/**
 * Triton's statistics for one served version: requests that succeeded or failed and where their time
 * went (queued in the batcher, assembling the batch, the run, splitting rows back), runs by batch size,
 * images inferred. The batcher reports runs; the routes report requests. Times are cumulative
 * nanoseconds, as Triton's statistics extension and its nv_inference_* metrics give them.
 */

/** Cumulative count and nanoseconds, Triton's `{ count, ns }`. */
export interface Duration {
  count: number;
  ns: number;
}

/** Where one run's time went, in nanoseconds. */
export interface RunTimings {
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

/** Where one request's time went: its batch's run, plus its wait in the queue. */
export interface RequestTimings extends RunTimings {
  queueNs: number;
}

export const NO_TIMINGS: RequestTimings = { queueNs: 0, inputNs: 0, inferNs: 0, outputNs: 0 };

const duration = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ns: number) => {
  d.count++;
  d.ns += Math.max(0, Math.round(ns));
};
export const msToNs = (ms: number) => ms * 1e6;

export interface BatchStats {
  batch_size: number;
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

export class InferenceStats {
  /** Milliseconds since the epoch of the last request's answer (0: none yet). */
  lastInference = 0;
  /** Images inferred by successful requests. */
  inferenceCount = 0;
  /** Model runs (a batch of several requests is one). */
  executionCount = 0;
  readonly success = duration();
  readonly fail = duration();
  readonly queue = duration();
  readonly computeInput = duration();
  readonly computeInfer = duration();
  readonly computeOutput = duration();
  private readonly batches = new Map<number, BatchStats>();

  /** The batcher ran `size` images at once. */
  executed(size: number, t: RunTimings): void {
    this.executionCount++;
    let b = this.batches.get(size);
    if (!b) {
      b = { batch_size: size, compute_input: duration(), compute_infer: duration(), compute_output: duration() };
      this.batches.set(size, b);
    }
    add(b.compute_input, t.inputNs);
    add(b.compute_infer, t.inferNs);
    add(b.compute_output, t.outputNs);
  }

  /**
   * Count one request: `work` answers with its value, its image count and its timings; a throw (bad input,
   * a failed model, non-finite outputs) is a failure, rethrown.
   */
  async request<T>(work: () => Promise<{ value: T; count: number; timings: RequestTimings }>): Promise<T> {
    const started = performance.now();
    try {
      const { value, count, timings } = await work();
      add(this.success, msToNs(performance.now() - started));
      add(this.queue, timings.queueNs);
      add(this.computeInput, timings.inputNs);
      add(this.computeInfer, timings.inferNs);
      add(this.computeOutput, timings.outputNs);
      this.inferenceCount += count;
      return value;
    } catch (error) {
      add(this.fail, msToNs(performance.now() - started));
      throw error;
    } finally {
      this.lastInference = Date.now();
    }
  }

  /** Runs by batch size, smallest first. */
  batchStats(): BatchStats[] {
    return [...this.batches.values()].sort((a, b) => a.batch_size - b.batch_size);
  }
}

/** Timings of several runs that answered one request together (e.g. /predict's chunks): their sums. */
export function sumTimings(all: RequestTimings[]): RequestTimings {
  return all.reduce(
    (s, t) => ({
      queueNs: s.queueNs + t.queueNs,
      inputNs: s.inputNs + t.inputNs,
      inferNs: s.inferNs + t.inferNs,
      outputNs: s.outputNs + t.outputNs,
    }),
    NO_TIMINGS,
  );
}
