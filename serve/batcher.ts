/**
 * Dynamic batching for one model version: concurrent requests are coalesced into one ORT run of up
 * to `maxBatch` images. The first request waits at most `delayMs` for company; while a run is in
 * flight, arrivals queue and go together in the next one. Results are split back per request by rows,
 * and every run is checked to give exactly one row per image for every output (`rowSizes`), so answers
 * can never cross between clients.
 */

/** Named outputs of a run, each row-major with one row per image. */
export type Outputs = Record<string, Float32Array>;
export type RunBatch = (images: Float32Array, count: number) => Promise<Outputs>;

interface Pending {
  images: Float32Array;
  count: number;
  resolve: (outputs: Outputs) => void;
  reject: (error: unknown) => void;
}

export interface BatcherOptions {
  maxBatch: number;
  delayMs: number;
  /** Elements per image of each output (the model's contract, measured at load). */
  rowSizes: Record<string, number>;
  /** Elements per input image. */
  imageSize: number;
  /** Called with each run's batch size (for the metrics histogram). */
  onBatch?: (size: number) => void;
}

export class BatchShapeError extends Error {
  override name = 'BatchShapeError';
}

export class Batcher {
  private queue: Pending[] = [];
  private queued = 0;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly run: RunBatch,
    private readonly options: BatcherOptions,
  ) {}

  /** Every output for `count` images (row-major, one row per image). */
  infer(images: Float32Array, count: number): Promise<Outputs> {
    if (images.length !== count * this.options.imageSize)
      return Promise.reject(new BatchShapeError(`${images.length} values are not ${count} images`));
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
      const { imageSize, rowSizes } = this.options;
      const images = new Float32Array(count * imageSize);
      let offset = 0;
      for (const p of batch) {
        images.set(p.images, offset * imageSize);
        offset += p.count;
      }
      this.options.onBatch?.(count);
      const outputs = await this.run(images, count);
      for (const [name, size] of Object.entries(rowSizes)) {
        if (outputs[name]?.length !== count * size)
          throw new BatchShapeError(`output ${name} gave ${outputs[name]?.length} values for ${count} images`);
      }
      offset = 0;
      for (const p of batch) {
        const mine: Outputs = {};
        for (const [name, size] of Object.entries(rowSizes))
          mine[name] = (outputs[name] as Float32Array).slice(offset * size, (offset + p.count) * size);
        p.resolve(mine);
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
