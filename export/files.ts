/** Atomic file writes: a reader (or a crash) never sees a half-written file. */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeModel, encodeModel } from './onnx/codec.ts';
import type { ModelProto } from './onnx/schema.ts';

/** Write to a temp file beside `path`, fsync it, then rename over `path`. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Like writeFileAtomic, but never replaces an existing file: the complete temp file is hard-linked
 * into place, which fails with EEXIST (and leaves `path` untouched) if anyone created it first.
 */
export async function writeNewFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}

/** Serialize and atomically write a model. */
export async function writeModelFile(path: string, model: ModelProto): Promise<void> {
  await writeFileAtomic(path, encodeModel(model));
}

/** Read and parse a model file. */
export async function readModelFile(path: string): Promise<ModelProto> {
  return decodeModel(await readFile(path));
}
