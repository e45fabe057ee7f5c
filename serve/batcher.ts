/**
 * Dynamic batching for one model version: concurrent requests are coalesced into one ORT run of up
 * to `maxBatch` images. The first request waits at most `delayMs` for company; while a run is in
 * flight, arrivals queue and go together in the next one. Results are split back per request by rows.
 * Runs are padded (blank images) up to the sizes checked at load (`runSizes`, see batch-check.ts), and
 * every run is checked to give exactly one row per image for every output (`rowSizes`); a run that does
 * not is retried one image at a time, so a request gets its own rows or a clear error, never another's.
 */

import { msToNs, type RequestTimings, type RunTimings } from './inference-stats.ts';
import { pushedOutFor, ServedOrder, takeTurns } from './queue-shares.ts';

/** Named outputs of a run, each row-major with one row per image. */
export type Outputs = Record<string, Float32Array>;
export type RunBatch = (images: Float32Array, count: number) => Promise<Outputs>;

/** A request's outputs and where its time went (for the statistics extension). */
export interface TimedOutputs {
  outputs: Outputs;
  timings: RequestTimings;
}

interface Pending {
  /** Whose request it is (queue-shares.ts: room and turns are shared by client). */
  client: string;
  /** The request it is a part of, where one was split into runs (inferAll). */
  request?: object;
  /** How many runs had begun when it came (takeTurns' rank for a client never served). */
  arrivedRun: number;
  images: Float32Array;
  count: number;
  /** performance.now() when it joined the queue. */
  enqueued: number;
  resolve: (result: TimedOutputs) => void;
  reject: (error: unknown) => void;
  /** Stops listening for the client's departure (once the request runs or is dropped). */
  forget?: () => void;
}

export interface BatcherOptions {
  maxBatch: number;
  delayMs: number;
  /** Elements per image of each output (the model's contract, measured at load). */
  rowSizes: Record<string, number>;
  /** Elements per input image. */
  imageSize: number;
  /** The batch sizes runs are padded up to (ascending; the last is maxBatch); none: runs as they come. */
  runSizes?: number[];
  /** Called with each run's batch size (for the metrics histogram). */
  onBatch?: (size: number) => void;
  /** Called after each run that gave every request its rows: its size and where its time went. */
  onRun?: (size: number, timings: RunTimings) => void;
  /**
   * The most images waiting for a run (the run in flight not counted); a request past it takes room from
   * the client holding most, if that one holds more than the newcomer would, or is refused with
   * QueueFullError (queue-shares.ts). Default: no bound.
   */
  maxQueued?: number;
}

/** Row blocks one after the other in one array. */
export function concatRows(parts: readonly Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

export class BatchShapeError extends Error {
  override name = 'BatchShapeError';
}

/**
 * The version's queue already holds as many images as it takes (Triton's "exceeds maximum queue size"), or
 * a waiting request was pushed out by a client holding less of the queue.
 */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

/** The request left the queue unrun: its client went away, or the server is stopping (`reason`). */
export class DroppedRequestError extends Error {
  override name = 'DroppedRequestError';
  constructor(readonly reason: 'client_gone' | 'shutting_down') {
    super(reason === 'client_gone' ? 'the client went away before its request ran' : 'the server is shutting down');
  }
}

export class Batcher {
  private queue: Pending[] = [];
  private queued = 0;
  /** The run each client was last in: takeTurns' order. */
  private readonly served = new ServedOrder();
  private running = false;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly run: RunBatch,
    private readonly options: BatcherOptions,
  ) {}

  /** Every output for `count` images (row-major, one row per image). */
  async infer(images: Float32Array, count: number): Promise<Outputs> {
    return (await this.inferTimed(images, count)).outputs;
  }

  /** How long a request waits for others to join its batch. */
  get delayMs(): number {
    return this.options.delayMs;
  }

  /** The requests waiting for a run. */
  get pending(): number {
    return this.queue.length;
  }

  /** Images waiting for a run. */
  get queuedImages(): number {
    return this.queued;
  }

  /**
   * `infer`, with the request's queue and compute times. When `signal` aborts (the client went away) while
   * the request still waits, it leaves the queue unrun and fails with DroppedRequestError: work for clients
   * that left is never run (an outside attack queued 16 minutes of a slow model's runs, then disconnected).
   */
  inferTimed(images: Float32Array, count: number, signal?: AbortSignal, client = 'local'): Promise<TimedOutputs> {
    try {
      this.assertShape(images, count);
      if (signal?.aborted) throw new DroppedRequestError('client_gone');
      this.makeRoom(count, client);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.enqueue(images, count, client, signal);
  }

  private assertShape(images: Float32Array, count: number): void {
    if (images.length !== count * this.options.imageSize)
      throw new BatchShapeError(`${images.length} values are not ${count} images`);
    if (this.options.runSizes && count > this.options.maxBatch)
      throw new BatchShapeError(`${count} images are more than the ${this.options.maxBatch} of a run`);
  }

  /**
   * Queues one request (its room already checked), dropped unrun if `signal` aborts while it waits; `request`
   * names the request it is a part of, where one was split into runs.
   */
  private enqueue(
    images: Float32Array,
    count: number,
    client: string,
    signal?: AbortSignal,
    request?: object,
  ): Promise<TimedOutputs> {
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        client,
        request,
        arrivedRun: this.served.runsBegun,
        images,
        count,
        enqueued: performance.now(),
        resolve,
        reject,
      };
      if (signal) {
        const drop = () => this.drop(pending, new DroppedRequestError('client_gone'));
        signal.addEventListener('abort', drop, { once: true });
        pending.forget = () => signal.removeEventListener('abort', drop);
      }
      this.queue.push(pending);
      this.queued += count;
      this.schedule();
    });
  }

  /**
   * Several parts of one request (a /predict batch split into runs), admitted together or not at all: the
   * room is checked for their sum once, and once one part fails the others still waiting leave the queue.
   */
  async inferAll(
    parts: { images: Float32Array; count: number }[],
    signal?: AbortSignal,
    client = 'local',
  ): Promise<TimedOutputs[]> {
    for (const p of parts) this.assertShape(p.images, p.count);
    if (signal?.aborted) throw new DroppedRequestError('client_gone');
    this.makeRoom(
      parts.reduce((sum, p) => sum + p.count, 0),
      client,
    );
    const failed = new AbortController();
    const either = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
    const request = {};
    const admitted = parts.map((p) => this.enqueue(p.images, p.count, client, either, request));
    try {
      return await Promise.all(admitted);
    } catch (error) {
      failed.abort();
      throw error;
    }
  }

  /**
   * Throws QueueFullError (or DroppedRequestError when stopping) unless `count` more images of `client` fit
   * the queue now, pushing out requests of clients holding more than it would (queue-shares.ts) where that
   * makes room. An empty queue takes any one request (a /predict batch larger than the bound is not refused
   * for ever).
   */
  private makeRoom(count: number, client: string): void {
    if (this.closed) throw new DroppedRequestError('shutting_down');
    const max = this.options.maxQueued ?? Number.POSITIVE_INFINITY;
    if (this.queued === 0 || this.queued + count <= max) return;
    const pushed = pushedOutFor(this.queue, client, count, max);
    if (!pushed)
      throw new QueueFullError(
        `the model's queue holds ${this.queued} images of the ${max} it takes, and no room can be taken from a client holding more than this one would (a client's oldest waiting request stays); retry shortly`,
      );
    for (const p of pushed)
      this.drop(
        p,
        new QueueFullError(
          "the model's queue was full and this client held more of it than another that needed room; retry shortly",
        ),
      );
  }

  /** Refuses new requests and fails every waiting one; the run in flight finishes. */
  close(): void {
    this.closed = true;
    for (const p of [...this.queue]) this.drop(p, new DroppedRequestError('shutting_down'));
  }

  /** Takes `p` out of the queue unrun, if it is still there. */
  private drop(p: Pending, error: DroppedRequestError | QueueFullError): void {
    const at = this.queue.indexOf(p);
    if (at < 0) return;
    this.queue.splice(at, 1);
    this.queued -= p.count;
    p.forget?.();
    p.reject(error);
  }

  /** The smallest checked size that holds `count` images. */
  private runSize(count: number): number {
    return this.options.runSizes?.find((s) => s >= count) ?? count;
  }

  /** Run `images` (padded) for `count` real images; undefined when the model gave the wrong number of rows. */
  private async runChecked(images: Float32Array, count: number): Promise<Outputs | undefined> {
    const size = images.length / this.options.imageSize;
    const outputs = await this.run(images, size);
    for (const [name, rowSize] of Object.entries(this.options.rowSizes))
      if (outputs[name]?.length !== size * rowSize) return undefined;
    return size === count ? outputs : this.rows(outputs, 0, count);
  }

  private rows(outputs: Outputs, offset: number, count: number): Outputs {
    const mine: Outputs = {};
    for (const [name, size] of Object.entries(this.options.rowSizes))
      mine[name] = (outputs[name] as Float32Array).slice(offset * size, (offset + count) * size);
    return mine;
  }

  /** One request, one image per run; fails it if even that gives the wrong rows. */
  private async alone(p: Pending): Promise<void> {
    const started = performance.now();
    try {
      const { imageSize, rowSizes } = this.options;
      const parts: Outputs[] = [];
      for (let i = 0; i < p.count; i++) {
        const one = await this.runChecked(p.images.slice(i * imageSize, (i + 1) * imageSize), 1);
        if (!one) throw new BatchShapeError('the model gave the wrong number of rows for a single image');
        parts.push(one);
      }
      p.resolve({
        outputs: Object.fromEntries(
          Object.keys(rowSizes).map((name) => [name, concatRows(parts.map((q) => q[name] as Float32Array))]),
        ),
        timings: { queueNs: 0, inputNs: 0, inferNs: msToNs(performance.now() - started), outputNs: 0 },
      });
    } catch (error) {
      p.reject(error);
    }
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
    // Whole requests up to maxBatch images, in turns across clients.
    const batch = takeTurns(this.queue, this.options.maxBatch, this.served);
    const taken = new Set(batch);
    this.queue = this.queue.filter((p) => !taken.has(p));
    this.served.beginRun(batch.map((p) => p.client));
    let count = 0;
    for (const p of batch) {
      count += p.count;
      p.forget?.(); // from here it runs, wanted or not: its rows are part of the batch
    }
    this.queued -= count;
    this.running = true;
    let answered: (() => void)[] = [];
    const started = performance.now();
    try {
      const { imageSize } = this.options;
      const images = new Float32Array(this.runSize(count) * imageSize);
      let offset = 0;
      for (const p of batch) {
        images.set(p.images, offset * imageSize);
        offset += p.count;
      }
      this.options.onBatch?.(count);
      const assembled = performance.now();
      const outputs = await this.runChecked(images, count);
      if (!outputs) {
        // Wrong rows for this batch: each request again, image by image (size 1 is checked at load).
        for (const p of batch) await this.alone(p);
        return;
      }
      const ran = performance.now();
      offset = 0;
      const answers = batch.map((p) => {
        const rows = this.rows(outputs, offset, p.count);
        offset += p.count;
        return rows;
      });
      const run: RunTimings = {
        inputNs: msToNs(assembled - started),
        inferNs: msToNs(ran - assembled),
        outputNs: msToNs(performance.now() - ran),
      };
      this.options.onRun?.(count, run);
      answered = batch.map(
        (p, i) => () =>
          p.resolve({ outputs: answers[i] as Outputs, timings: { ...run, queueNs: msToNs(started - p.enqueued) } }),
      );
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
    await inTurns(answered);
  }
}

/**
 * Requests answered per event-loop turn. Each resolution runs its request's rest (checks, encoding, the
 * socket write) before the turn ends: answering 1,000 one-image requests of one run (with `--max-batch`
 * raised) held the loop 0.16–0.25 s, health checks and other clients waiting; 0.03–0.05 s in slices.
 */
const ANSWERED_PER_TURN = 64;

/** Calls `answers` a slice per event-loop turn (the next run is already free to start). */
async function inTurns(answers: readonly (() => void)[]): Promise<void> {
  for (let i = 0; i < answers.length; i += ANSWERED_PER_TURN) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const answer of answers.slice(i, i + ANSWERED_PER_TURN)) answer();
  }
}
