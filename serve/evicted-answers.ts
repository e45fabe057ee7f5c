/**
 * Answers dropped by closing a client's connections to make room (unread-answers.ts, grpc/unsent-answers.ts)
 * are garbage, not free memory: their buffers go back at V8's next full collection, which a server answering
 * small requests may not run for a long time. An outside attack evicted 28 gRPC sessions of never-read 1 MB
 * answers one after another and left +0.5 GB of unreachable buffers (RSS 179 → 686 MB, a budget of 64 MiB).
 * So evicted bytes count here until a collection has run after their connections closed, and one is asked
 * for (at most every `minGapMs`) when some wait; a budget evicts only while these hold less than its total,
 * so a server holds at most twice its budget of answers, and a client that reads waits for room ("retry")
 * rather than memory growing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's full collection, where the runtime lets a process ask for one (jest's leak detector asks the same way). */
function fullCollection(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? () => gc() : undefined;
  } catch {
    return undefined;
  }
}

let collection: (() => void) | undefined | null = null;
/** A full collection, asked for once per process (setting the flag again would not change the answer). */
export const garbageCollection = () => {
  if (collection === null) collection = fullCollection();
  return collection;
};

export class EvictedAnswers {
  private counted = 0;
  /** Bytes whose connections have closed: free after the next collection. */
  private closed = 0;
  private scheduled: NodeJS.Timeout | undefined;
  private lastCollection = 0;

  /** `collect` runs a full collection (without one, bytes go back as their connections close). */
  constructor(
    private readonly collect: (() => void) | undefined = garbageCollection(),
    private readonly minGapMs = 250,
  ) {}

  /** Bytes evicted and not yet known to be free. */
  get bytes(): number {
    return this.counted;
  }

  /** Count `bytes` dropped with connections that are closing; `closed` settles once they all have. */
  hold(bytes: number, closed: Promise<unknown>): void {
    if (bytes <= 0) return;
    this.counted += bytes;
    void closed.then(() => {
      this.closed += bytes;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    const wait = Math.max(0, this.lastCollection + this.minGapMs - Date.now());
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      const freed = this.closed;
      this.closed = 0;
      this.collect?.();
      this.lastCollection = Date.now();
      this.counted -= freed;
    }, wait);
    this.scheduled.unref();
  }
}

/** Settles when `emitter` has emitted 'close' (at once if `isClosed`). */
export const closing = (emitter: NodeJS.EventEmitter, isClosed: boolean): Promise<void> =>
  isClosed ? Promise.resolve() : new Promise((resolve) => emitter.once('close', () => resolve()));
