/**
 * Checkpoints: one file holding everything needed to continue a run exactly — every carried tensor
 * (parameters, BatchNorm buffers, optimizer state), the step count, the trainer's and the data
 * stream's RNG states, the epoch just finished and the run's history up to it. The checkpoint is the
 * run's single source of truth: history.json and the plots are views rewritten from it.
 *
 * Layout (version 2): "MNCK" magic, uint32 version, uint32 header length, the JSON header, zero padding
 * to a multiple of 4, the tensors' float32 data (little-endian) in header order, then the SHA-256 of
 * everything before it. Written atomically (temp file + fsync + rename), so a kill at any moment
 * leaves the previous checkpoint intact; with --ema the weights' moving average rides along as tensors named
 * `average:<name>`; read back, the checksum, the header's fields and every
 * value's finiteness are verified. Version 1 files (no checksum, no history) are still read.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { issuesInOneLine } from '../core/zod-issues.ts';
import { type WriteFile, writeFileAtomic } from '../node/files.ts';
import { readFailure, readRegularFile } from '../node/regular-file.ts';
import { type EpochRecord, epochRecordSchema } from './run-dir.ts';
import type { TrainerState } from './trainer.ts';

const MAGIC = 'MNCK';
const VERSION = 2;
const DIGEST_BYTES = 32;

export interface Checkpoint {
  /** Epochs completed. */
  epoch: number;
  trainer: TrainerState;
  dataRngState: number;
  /** One record per completed epoch (absent only in version-1 files, whose history is in history.json). */
  history?: EpochRecord[];
  /** With --ema: the weights' moving average, the run's model (stored as tensors named `average:<name>`). */
  average?: Map<string, Float32Array>;
  /**
   * The run's config as it trained (absent in checkpoints written before it was kept): a resume compares it
   * with config.json, so a hand edit cannot change a run's settings halfway (train/loop.ts).
   */
  config?: Record<string, unknown>;
}

const AVERAGE_PREFIX = 'average:';

const count = z.number().int().nonnegative();
const uint32 = count.max(0xffff_ffff);
const headerSchema = z.object({
  epoch: count,
  stepCount: count,
  rngState: uint32,
  dataRngState: uint32,
  tensors: z
    .array(z.object({ name: z.string().min(1), length: count }))
    .refine((t) => new Set(t.map((x) => x.name)).size === t.length, 'tensor names repeat'),
  history: z.array(epochRecordSchema).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
});
type Header = z.infer<typeof headerSchema>;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();

/** The largest zoo model's checkpoint (mlp with Adam) is ~7 MiB: this caps what a read may allocate. */
const MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024;

/** The first non-finite value among `tensors`, as one line ending in "the run diverged"; undefined if none. */
export function nonFiniteValue(tensors: Iterable<[string, Float32Array]>): string | undefined {
  for (const [name, data] of tensors) {
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return `${name} holds a non-finite value (${data[bad]} at index ${bad}): the run diverged`;
  }
  return undefined;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const averages = [...(checkpoint.average ?? [])].map(([name, data]): [string, Float32Array] => [
    AVERAGE_PREFIX + name,
    data,
  ]);
  const tensors = [...checkpoint.trainer.tensors, ...averages];
  const header: Header = {
    epoch: checkpoint.epoch,
    stepCount: checkpoint.trainer.stepCount,
    rngState: checkpoint.trainer.rngState,
    dataRngState: checkpoint.dataRngState,
    tensors: tensors.map(([name, data]) => ({ name, length: data.length })),
    history: checkpoint.history ?? [],
    ...(checkpoint.config ? { config: checkpoint.config } : {}),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const total = tensors.reduce((n, [, data]) => n + data.length, 0);
  const body = start + total * 4;
  const bytes = new Uint8Array(body + DIGEST_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, json.length, true);
  bytes.set(json, 12);
  const floats = new Float32Array(bytes.buffer, start, total);
  let offset = 0;
  for (const [, data] of tensors) {
    floats.set(data, offset);
    offset += data.length;
  }
  bytes.set(sha256(bytes.subarray(0, body)), body);
  return bytes;
}

export function decodeCheckpoint(bytes: Uint8Array, path = 'checkpoint'): Checkpoint {
  const fail = (why: string): never => {
    throw new Error(`${path} is not a valid checkpoint: ${why}`);
  };
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) fail('bad magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== 1 && version !== VERSION) fail(`unknown version ${version}`);
  let body = bytes.length;
  if (version === VERSION) {
    if (bytes.length < 12 + DIGEST_BYTES) fail('truncated');
    body -= DIGEST_BYTES;
    if (!sha256(bytes.subarray(0, body)).equals(bytes.subarray(body)))
      fail('checksum mismatch (the file is damaged or was changed)');
  }
  const length = view.getUint32(8, true);
  if (12 + length > body) fail('truncated header');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  } catch {
    return fail('unreadable header');
  }
  const result = headerSchema.safeParse(parsed);
  if (!result.success) return fail(`bad header: ${issuesInOneLine(result.error, 'header')}`);
  const header = result.data;
  if (version === VERSION && header.history?.length !== header.epoch)
    fail(`the history has ${header.history?.length ?? 0} epochs, the header says ${header.epoch}`);
  const start = Math.ceil((12 + length) / 4) * 4;
  const total = header.tensors.reduce((n, t) => n + t.length, 0);
  if (body !== start + total * 4) fail(`expected ${start + total * 4} bytes of header and tensors, found ${body}`);
  // Copy into a fresh, aligned buffer (a Node Buffer is a view into a larger pool at any offset).
  const floats = new Float32Array(new Uint8Array(bytes.subarray(start, body)).buffer);
  const tensors = new Map<string, Float32Array>();
  const average = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of header.tensors) {
    const data = floats.slice(offset, offset + t.length);
    const diverged = nonFiniteValue([[t.name, data]]);
    if (diverged) fail(diverged);
    if (t.name.startsWith(AVERAGE_PREFIX)) average.set(t.name.slice(AVERAGE_PREFIX.length), data);
    else tensors.set(t.name, data);
    offset += t.length;
  }
  return {
    epoch: header.epoch,
    trainer: { tensors, stepCount: header.stepCount, rngState: header.rngState },
    dataRngState: header.dataRngState,
    ...(version === VERSION ? { history: header.history } : {}),
    ...(average.size > 0 ? { average } : {}),
    ...(header.config ? { config: header.config } : {}),
  };
}

/**
 * Write a checkpoint, refusing a diverged state: NaN or Infinity in it would only make export and
 * resume fail later, and the previous (good) checkpoint stays in place instead.
 */
export async function saveCheckpoint(
  path: string,
  checkpoint: Checkpoint,
  write: WriteFile = writeFileAtomic,
): Promise<void> {
  const diverged = nonFiniteValue([...checkpoint.trainer.tensors, ...(checkpoint.average ?? [])]);
  if (diverged) throw new Error(diverged);
  await write(path, encodeCheckpoint(checkpoint));
}

/** The checkpoint file's bytes and their SHA-256 (hex), which identifies the weights an export came from. */
export async function readCheckpointFile(path: string): Promise<{ checkpoint: Checkpoint; sha256: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, MAX_CHECKPOINT_BYTES);
  } catch (error) {
    throw new Error(`cannot read checkpoint ${path}: ${readFailure(error)}`);
  }
  return { checkpoint: decodeCheckpoint(bytes, path), sha256: sha256(bytes).toString('hex') };
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  return (await readCheckpointFile(path)).checkpoint;
}
