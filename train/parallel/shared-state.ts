/**
 * The memory the main thread and the training workers share (SharedArrayBuffers, no copies in messages):
 *
 * - `carried`: every parameter, optimizer-state and buffer tensor: the one current value of the model. Workers
 *   read the parameters and buffers from it before each gradient run and write back the shard they update.
 *   The trainable parameters come first, end to end, then each optimizer slot's tensors in the same order
 *   (`flat(role, …)` views a range of one of these), then the buffers.
 * - one `reduced` region per worker: its slice's mean gradient of every trainable parameter (end to end,
 *   in the same order) and its update of every buffer.
 * - `control`: a barrier (arrivals, generation), an error flag, an abort flag, and per worker a request
 *   counter (the main thread bumps it after posting a step) and a reply counter (the worker bumps it after
 *   posting its reply).
 *
 * Waiting threads spin for a moment before they sleep, as OpenMP's threads do: a step of a small model takes
 * a few milliseconds, and waking a sleeping thread costs 0.2–0.5 ms on a virtual machine (measured here:
 * a worker's start lag after postMessage was 0.4–0.5 ms, a third of a cnn step's overhead).
 */

import { IMAGE_PIXELS } from '../../core/contract.ts';
import { sizeOf } from '../../onnx/tensor.ts';

export interface TensorSlot {
  name: string;
  shape: number[];
  /** Offset and length in floats, within its region. */
  offset: number;
  length: number;
}

export interface SharedLayout {
  carried: TensorSlot[];
  carriedLength: number;
  /** Floats of trainable parameters: each role's run (parameters, then each slot) is this long. */
  flatLength: number;
  reduced: TensorSlot[];
  reducedLength: number;
  workers: number;
}

function slots(tensors: readonly { name: string; shape: number[] }[]): { slots: TensorSlot[]; length: number } {
  let offset = 0;
  const out = tensors.map((t) => {
    const slot = { name: t.name, shape: t.shape, offset, length: sizeOf(t.shape) };
    offset += slot.length;
    return slot;
  });
  return { slots: out, length: offset };
}

/**
 * The layout for `trainable` parameters (with `stateSlots` optimizer slots each, named `name(param, slot)`),
 * `buffers`, and the per-worker `reduced` tensors.
 */
export function sharedLayout(
  trainable: readonly { name: string; shape: number[] }[],
  stateSlots: readonly ((param: string) => string)[],
  buffers: readonly { name: string; shape: number[] }[],
  reduced: readonly { name: string; shape: number[] }[],
  workers: number,
): SharedLayout {
  const c = slots([
    ...trainable,
    ...stateSlots.flatMap((name) => trainable.map((p) => ({ name: name(p.name), shape: p.shape }))),
    ...buffers,
  ]);
  const r = slots(reduced);
  const flatLength = trainable.reduce((sum, p) => sum + sizeOf(p.shape), 0);
  return { carried: c.slots, carriedLength: c.length, flatLength, reduced: r.slots, reducedLength: r.length, workers };
}

export interface SharedBuffers {
  /** Shared between threads; a plain ArrayBuffer for one participant, which ORT can read without a copy. */
  floats: SharedArrayBuffer | ArrayBuffer;
  control: SharedArrayBuffer;
}

export function allocateShared(layout: SharedLayout): SharedBuffers {
  const bytes = 4 * (layout.carriedLength + layout.workers * layout.reducedLength);
  const floats = layout.workers > 1 ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  return { floats, control: new SharedArrayBuffer(4 * (MAILBOXES + 2 * layout.workers)) };
}

/** Views on one worker's (or the main thread's) side of the shared memory. */
export class SharedState {
  readonly control: Int32Array;
  private readonly floats: Float32Array;
  private readonly carriedSlots: Map<string, TensorSlot>;
  private readonly reducedSlots: Map<string, TensorSlot>;

  constructor(
    readonly layout: SharedLayout,
    buffers: SharedBuffers,
  ) {
    this.floats = new Float32Array(buffers.floats);
    this.control = new Int32Array(buffers.control);
    this.carriedSlots = new Map(layout.carried.map((s) => [s.name, s]));
    this.reducedSlots = new Map(layout.reduced.map((s) => [s.name, s]));
  }

  /** A live view of a carried tensor. */
  carried(name: string): Float32Array {
    const slot = this.carriedSlots.get(name);
    if (!slot) throw new Error(`internal: no shared tensor ${name}`);
    return this.floats.subarray(slot.offset, slot.offset + slot.length);
  }

  /** A range of the trainable parameters end to end (role 0) or of optimizer slot `role - 1`'s tensors. */
  flat(role: number, start: number, length: number): Float32Array {
    const base = role * this.layout.flatLength + start;
    return this.floats.subarray(base, base + length);
  }

  /** Worker `worker`'s whole reduced region, or one tensor of it. */
  reduced(worker: number, name?: string): Float32Array {
    const base = this.layout.carriedLength + worker * this.layout.reducedLength;
    if (name === undefined) return this.floats.subarray(base, base + this.layout.reducedLength);
    const slot = this.reducedSlots.get(name);
    if (!slot) throw new Error(`internal: no reduced tensor ${name}`);
    return this.floats.subarray(base + slot.offset, base + slot.offset + slot.length);
  }
}

const ARRIVED = 0;
const GENERATION = 1;
const ERROR = 2;
const ABORT = 3;
const MAILBOXES = 4;

/** How long a waiting thread spins before it sleeps. */
export const SPIN_MS = 2;

/**
 * Wait until all participants have arrived (a generation-counting barrier on Atomics): spin a moment, then
 * sleep without blocking the event loop (so a worker's exit is still seen on the main thread). Throws
 * when the main thread aborts the step (a worker died), so nobody waits forever.
 */
export async function arriveAndWait(control: Int32Array, participants: number): Promise<void> {
  const generation = Atomics.load(control, GENERATION);
  if (Atomics.add(control, ARRIVED, 1) === participants - 1) {
    Atomics.store(control, ARRIVED, 0);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    return;
  }
  await waitWhile(control, GENERATION, generation, 1000, () => {
    if (Atomics.load(control, ABORT)) throw new Error('the step was aborted: a training worker stopped');
  });
}

/**
 * Wait while `control[index]` still holds `value`: spin up to SPIN_MS, then sleep in slices of `sleepMs`
 * without blocking the event loop, calling `check` (which throws to stop waiting) before each sleep.
 */
async function waitWhile(
  control: Int32Array,
  index: number,
  value: number,
  sleepMs: number,
  check: () => void,
): Promise<void> {
  const until = performance.now() + SPIN_MS;
  while (Atomics.load(control, index) === value && performance.now() < until) {}
  while (Atomics.load(control, index) === value) {
    check();
    await Atomics.waitAsync(control, index, value, sleepMs).value;
  }
}

/** The counter the main thread bumps when it has posted a step for `worker`. */
export const requestBox = (worker: number) => MAILBOXES + 2 * worker;
/** The counter `worker` bumps when it has posted its reply. */
export const replyBox = (worker: number) => MAILBOXES + 2 * worker + 1;

/** A message has been posted for whoever watches `box`. */
export function signal(control: Int32Array, box: number): void {
  Atomics.add(control, box, 1);
  Atomics.notify(control, box);
}

/**
 * Wait (spinning first) until `box` counts more than `seen`; the new count. `gone` is asked while
 * sleeping, so a waiter notices a dead sender within 100 ms instead of waiting forever.
 */
export async function signalled(control: Int32Array, box: number, seen: number, gone = () => false): Promise<number> {
  await waitWhile(control, box, seen, 100, () => {
    if (gone()) throw new Error('the other side of a training worker stopped');
  });
  return Atomics.load(control, box);
}

/** A worker's gradient run failed: after the barrier nobody updates, so the state stays as it was. */
export const flagError = (control: Int32Array) => Atomics.store(control, ERROR, 1);
export const hasError = (control: Int32Array) => Atomics.load(control, ERROR) === 1;
/** Main thread, before each step. */
export const clearError = (control: Int32Array) => Atomics.store(control, ERROR, 0);

/** Main thread, when a worker is gone: wake every waiting worker to give up. */
export function abortWaiters(control: Int32Array): void {
  Atomics.store(control, ABORT, 1);
  Atomics.notify(control, GENERATION);
}

/** The shared batch inputs, big enough for the largest batch so far (replaced, never resized, when one is bigger). */
export interface SharedInputBuffers {
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
}

export class SharedInputs {
  buffers: SharedInputBuffers | undefined;
  images: Float32Array<ArrayBufferLike> = new Float32Array(0);
  labels: BigInt64Array<ArrayBufferLike> = new BigInt64Array(0);

  /** Room for a batch of n; true when the buffers are new (the workers must be sent them). */
  fit(n: number): boolean {
    if (this.labels.length >= n) return false;
    this.buffers = { images: new SharedArrayBuffer(4 * n * IMAGE_PIXELS), labels: new SharedArrayBuffer(8 * n) };
    this.images = new Float32Array(this.buffers.images);
    this.labels = new BigInt64Array(this.buffers.labels);
    return true;
  }
}
