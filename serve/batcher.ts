/**
 * Dynamic batching for one model version: concurrent requests are coalesced into one ORT run of up
 * to `maxBatch` images. The first request waits at most `delayMs` for company; while a run is in
 * flight, arrivals queue and go together in the next one. Results are split back per request, equal
 * to running each alone (the model is row-independent).
 */
export type RunBatch = (images: Float32Array, count: number) => Promise<Float32Array>;

interface Pending {
  images: Float32Array;
  count: number;
  resolve: (logits: Float32Array) => void;
  reject: (error: unknown) => void;
}

export interface BatcherOptions {
  maxBatch: number;
  delayMs: number;
  /** Called with each run's batch size (for the metrics histogram). */
  onBatch?: (size: number) => void;
}

export class Batcher {
  private queue: Pending[] = [];
  private queued = 0;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly run: RunBatch,
    private readonly options: BatcherOptions,
    private readonly imageSize = 784,
    private readonly outputSize = 10,
  ) {}

  /** Logits for `count` images (row-major [count, outputSize]). */
  infer(images: Float32Array, count: number): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.queue.push({ images, count, resolve, reject });
      this.queued += count;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running) return; // the run in flight flushes the queue when it ends
    if (this.queued >= this.options.maxBatch || this.options.delayMs <= 0) {
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.delayMs);
    }
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    // Take whole requests up to maxBatch images (a single larger request runs on its own).
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending;
      if (batch.length > 0 && count + next.count > this.options.maxBatch) break;
      batch.push(next);
      count += next.count;
      this.queue.shift();
    }
    this.queued -= count;
    this.running = true;
    try {
      const images = new Float32Array(count * this.imageSize);
      let offset = 0;
      for (const p of batch) {
        images.set(p.images, offset * this.imageSize);
        offset += p.count;
      }
      this.options.onBatch?.(count);
      const logits = await this.run(images, count);
      offset = 0;
      for (const p of batch) {
        p.resolve(logits.slice(offset * this.outputSize, (offset + p.count) * this.outputSize));
        offset += p.count;
      }
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
  }
}
