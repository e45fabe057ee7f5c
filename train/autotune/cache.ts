/**
 * The autotuner's choices on disk, like cuDNN's benchmark cache but kept: one JSON file of
 * "<shape key>" → formulation, in a folder the user can see and delete (default ~/.cache/mnist-onnx-cnn,
 * or $MNIST_ONNX_CNN_CACHE). Keys include ORT's version, so an upgrade re-measures; the file's version
 * changes when the way of measuring does (4: shares of back-to-back rounds, in the whole step),
 * so old choices are dropped. A cache that cannot be read or written (a read-only disk, a directory or
 * a FIFO in its place) only costs the saving: the caller trains with what it measured and says so once.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../node/files.ts';
import { readFailure, readRegularFile } from '../../node/regular-file.ts';

export const CACHE_FILE = 'autotune.json';

/** Where choices are kept unless told otherwise. */
export function defaultCacheDir(): string {
  return process.env.MNIST_ONNX_CNN_CACHE || join(homedir(), '.cache', 'mnist-onnx-cnn');
}

const CACHE_VERSION = 4;

interface CacheFile {
  version: typeof CACHE_VERSION;
  choices: Record<string, string>;
}

/** A few hundred shapes take a few KiB: anything larger is not a cache we wrote. */
const MAX_CACHE_BYTES = 1024 * 1024;

export interface CachedChoices {
  choices: Map<string, string>;
  /** Why the file cannot be used (not a regular file, unreadable): it is then neither read nor replaced. */
  unusable?: string;
}

/**
 * The cached choices; empty when there are none yet or the file is corrupt (it is then rewritten whole),
 * and empty with `unusable` when what is there is no file of ours to read or replace.
 */
export async function readChoices(dir: string): Promise<CachedChoices> {
  let text: string;
  try {
    text = (await readRegularFile(join(dir, CACHE_FILE), MAX_CACHE_BYTES)).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { choices: new Map() };
    return { choices: new Map(), unusable: readFailure(error) };
  }
  try {
    const parsed = JSON.parse(text) as Partial<CacheFile>;
    if (parsed.version !== CACHE_VERSION || typeof parsed.choices !== 'object' || parsed.choices === null)
      return { choices: new Map() };
    return { choices: new Map(Object.entries(parsed.choices).filter(([, v]) => typeof v === 'string')) };
  } catch {
    return { choices: new Map() };
  }
}

/** Save the choices; resolves to why they could not be saved (EROFS, ENOTDIR, …), or undefined. */
export async function writeChoices(dir: string, choices: ReadonlyMap<string, string>): Promise<string | undefined> {
  const file: CacheFile = { version: CACHE_VERSION, choices: Object.fromEntries([...choices].sort()) };
  try {
    await writeFileAtomic(join(dir, CACHE_FILE), `${JSON.stringify(file, null, 2)}\n`);
    return undefined;
  } catch (error) {
    return readFailure(error);
  }
}
