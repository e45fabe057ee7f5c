/**
 * A model's `config.pbtxt` (Triton's model configuration, written by `npm run export`), read for serving,
 * so one repository behaves the same here and in Triton: `max_batch_size` and `dynamic_batching`'s
 * queue delay set the batcher, and `version_policy` says which versions are served (Triton's default,
 * without a policy, is the newest version only). No file: the server's own defaults, every version.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, readTritonConfig, type TritonVersionPolicy } from '../export/triton/config.ts';

/** Batching and version settings of one model. */
export interface ModelSettings {
  maxBatch?: number;
  batchDelayMs?: number;
  /** Which of the model's versions (ascending) to serve. */
  versionPolicy?: TritonVersionPolicy;
}

/** Longest batching delay a config may ask for (a typo of a few zeros must not stall every request). */
const MAX_DELAY_MS = 1000;

/**
 * The settings in `<root>/<name>/config.pbtxt`; `{}` when there is none. A file that can't be read or
 * parsed is reported through `onProblem` and the defaults are used (the model is still served).
 */
export function readModelSettings(root: string, name: string, onProblem: (cause: string) => void): ModelSettings {
  let text: string;
  try {
    text = readFileSync(join(root, name, CONFIG_FILE), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') onProblem(code ?? 'unreadable');
    return {};
  }
  try {
    const config = readTritonConfig(text);
    const delay = config.maxQueueDelayMicroseconds;
    return {
      // max_batch_size 0: the model does not batch; each request runs on its own.
      maxBatch: config.maxBatchSize > 0 ? config.maxBatchSize : 1,
      batchDelayMs: delay === undefined ? 0 : Math.min(MAX_DELAY_MS, delay / 1000),
      versionPolicy: config.versionPolicy,
    };
  } catch (error) {
    onProblem(`invalid ${CONFIG_FILE}: ${(error as Error).message.split('\n')[0]?.slice(0, 160)}`);
    return {};
  }
}

/** The versions a policy serves, of those present (ascending). */
export function servedVersions(present: number[], policy: TritonVersionPolicy | undefined): Set<number> {
  if (!policy || policy.kind === 'all') return new Set(present);
  if (policy.kind === 'latest') return new Set(present.slice(-Math.max(1, policy.numVersions)));
  return new Set(present.filter((v) => policy.versions.includes(v)));
}
