/**
 * Checkpoints: one file holding everything needed to continue a run exactly — every carried tensor
 * (parameters, BatchNorm buffers, optimizer state), the step count, the trainer's and the data
 * stream's RNG states, and the epoch just finished.
 *
 * Layout: "MNCK" magic, uint32 version, uint32 header length, the JSON header, zero padding to a
 * multiple of 4, then the tensors' float32 data (little-endian) in header order. Written atomically
 * (temp file + fsync + rename), so a kill at any moment leaves the previous checkpoint intact.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../export/files.ts';
import type { TrainerState } from './trainer.ts';

const MAGIC = 'MNCK';
const VERSION = 1;

export interface Checkpoint {
  /** Epochs completed. */
  epoch: number;
  trainer: TrainerState;
  dataRngState: number;
}

interface Header {
  epoch: number;
  stepCount: number;
  rngState: number;
  dataRngState: number;
  tensors: { name: string; length: number }[];
}

export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const tensors = [...checkpoint.trainer.tensors];
  const header: Header = {
    epoch: checkpoint.epoch,
    stepCount: checkpoint.trainer.stepCount,
    rngState: checkpoint.trainer.rngState,
    dataRngState: checkpoint.dataRngState,
    tensors: tensors.map(([name, data]) => ({ name, length: data.length })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const total = tensors.reduce((n, [, data]) => n + data.length, 0);
  const bytes = new Uint8Array(start + total * 4);
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
  return bytes;
}

export function decodeCheckpoint(bytes: Uint8Array, path = 'checkpoint'): Checkpoint {
  const fail = (why: string): never => {
    throw new Error(`${path} is not a valid checkpoint: ${why}`);
  };
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) fail('bad magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(4, true) !== VERSION) fail(`unknown version ${view.getUint32(4, true)}`);
  const length = view.getUint32(8, true);
  if (12 + length > bytes.length) fail('truncated header');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as Header;
  } catch {
    return fail('unreadable header');
  }
  const start = Math.ceil((12 + length) / 4) * 4;
  const total = header.tensors.reduce((n, t) => n + t.length, 0);
  if (bytes.length !== start + total * 4) fail(`expected ${start + total * 4} bytes, found ${bytes.length}`);
  // Copy into a fresh, aligned buffer (a Node Buffer is a view into a larger pool at any offset).
  const floats = new Float32Array(new Uint8Array(bytes.subarray(start)).buffer);
  const tensors = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of header.tensors) {
    tensors.set(t.name, floats.slice(offset, offset + t.length));
    offset += t.length;
  }
  return {
    epoch: header.epoch,
    trainer: { tensors, stepCount: header.stepCount, rngState: header.rngState },
    dataRngState: header.dataRngState,
  };
}

export async function saveCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(checkpoint));
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(
      `cannot read checkpoint ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return decodeCheckpoint(bytes, path);
}
