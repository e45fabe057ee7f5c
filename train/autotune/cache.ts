/**
 * The autotuner's choices on disk, like cuDNN's benchmark cache but kept: one JSON file of
 * "<shape key>" → formulation, in a folder the user can see and delete (default ~/.cache/mnist-onnx-cnn,
 * or $MNIST_ONNX_CNN_CACHE). Keys include ORT's version, so an upgrade re-measures; the file's version
 * changes when the way of measuring does (4: shares of back-to-back rounds, in the whole step),
 * so old choices are dropped.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../export/files.ts';

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

/** The cached choices; empty when the file is missing or unreadable (it is then rewritten whole). */
export async function readChoices(dir: string): Promise<Map<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, CACHE_FILE), 'utf8')) as Partial<CacheFile>;
    if (parsed.version !== CACHE_VERSION || typeof parsed.choices !== 'object' || parsed.choices === null)
      return new Map();
    return new Map(Object.entries(parsed.choices).filter(([, v]) => typeof v === 'string'));
  } catch {
    return new Map();
  }
}

export async function writeChoices(dir: string, choices: ReadonlyMap<string, string>): Promise<void> {
  const file: CacheFile = { version: CACHE_VERSION, choices: Object.fromEntries([...choices].sort()) };
  await writeFileAtomic(join(dir, CACHE_FILE), `${JSON.stringify(file, null, 2)}\n`);
}
