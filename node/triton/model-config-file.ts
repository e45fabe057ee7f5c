/**
 * `<repository>/<name>/config.pbtxt` on export: written when absent, the user's own kept when it still
 * describes the model, and the export refused (nothing written) when it no longer does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelProto } from '../../onnx/schema.ts';
import { writeNewFileAtomic } from '../files.ts';
import { readRegularFile, UnreadableFileError } from '../regular-file.ts';
import { CONFIG_FILE, configMismatches, formatTritonConfig, parseTritonConfig, tritonConfigFor } from './config.ts';

export interface TritonConfigResult {
  path: string;
  /** `written`: a new file; `kept`: the one there already matches the model (or could not be checked). */
  action: 'written' | 'kept';
  /** Why a kept file could not be checked against the model, if so. */
  warning?: string;
}

/**
 * Make sure the model directory `modelDir` (`<repository>/<name>`) has a `config.pbtxt` that
 * describes `model`. Call it before writing the version, so that a refusal leaves nothing behind.
 * Throws, naming each difference, when an existing config contradicts the model.
 */
/** A config.pbtxt is a few hundred bytes; the server reads at most this much of one too. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export async function ensureTritonConfig(
  modelDir: string,
  name: string,
  model: ModelProto,
): Promise<TritonConfigResult> {
  const path = join(modelDir, CONFIG_FILE);
  const generated = formatTritonConfig(tritonConfigFor(model, name));
  if (!existsSync(path)) {
    try {
      await writeNewFileAtomic(path, generated);
      return { path, action: 'written' };
    } catch (error) {
      // Someone wrote one between our check and our write: theirs wins, and is checked below.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  let text: string;
  try {
    // A regular file of bounded size, as the server reads it: a FIFO here had hung the export.
    text = (await readRegularFile(path, MAX_CONFIG_FILE_BYTES)).toString('utf8');
  } catch (error) {
    const why =
      error instanceof UnreadableFileError ? error.reason : ((error as NodeJS.ErrnoException).code ?? 'unreadable');
    throw new Error(`${path} is ${why}; nothing written. Remove it, or export under another --name`);
  }
  let existing: ReturnType<typeof parseTritonConfig>;
  try {
    existing = parseTritonConfig(text);
  } catch (error) {
    return {
      path,
      action: 'kept',
      warning: `kept ${path} as it is, unchecked: ${(error as Error).message}`,
    };
  }
  const problems = configMismatches(existing, model);
  if (problems.length > 0) {
    throw new Error(
      `${path} does not describe this model (${problems.join('; ')}); nothing written. Edit or remove that file, or export under another --name`,
    );
  }
  return { path, action: 'kept' };
}
