/**
 * A model's `config.pbtxt` (Triton's model configuration, written by `npm run export`), read for serving,
 * so one repository behaves the same here and in Triton: `max_batch_size` and `dynamic_batching`'s
 * queue delay set the batcher, and `version_policy` says which versions are served (Triton's default,
 * without a policy, is the newest version only). No file: the server's own defaults, every version.
 * The file is re-read at every scan but parsed only when it changed, and never trusted to be a plain file.
 */

import { lstat, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { readRegularFileStamped } from '../node/regular-file.ts';
import { CONFIG_FILE, readTritonConfig, type TritonVersionPolicy } from '../node/triton/config.ts';

/** Batching and version settings of one model. */
export interface ModelSettings {
  maxBatch?: number;
  batchDelayMs?: number;
  /** Which of the model's versions (ascending) to serve. */
  versionPolicy?: TritonVersionPolicy;
  /**
   * The config's max_batch_size as written. 0: Triton does not batch the model — its dims are full shapes
   * (a free first dimension takes a whole request of any size), and no dynamic_batching.
   */
  declaredMaxBatch?: number;
}

/** Longest batching delay a config may ask for (a typo of a few zeros must not stall every request). */
const MAX_DELAY_MS = 1000;

/** Reports a problem with a model's config (an errno code or a one-line reason); the model is still served. */
export type OnConfigProblem = (cause: string) => void;

/** How the repository gets a model's settings (a test may pass its own; the default reads config.pbtxt). */
export interface SettingsReader {
  (root: string, name: string, onProblem: OnConfigProblem): ModelSettings | Promise<ModelSettings>;
  /** Forget what it held for models of `root` not in `names` (folders gone: a model recreated under the same name starts afresh). */
  retain?(root: string, names: ReadonlySet<string>): void;
}

/** How long a config.pbtxt that vanished (or was emptied) keeps its model on the last good settings (a delete-then-write). */
const GONE_GRACE_MS = 5000;

/** Larger configs are refused unread (Triton's are a few KiB; the text-format parser stops at 1 MiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The settings a config's text gives; text that doesn't parse is reported and gives the defaults, `{}`. */
export function settingsFromText(text: string, onProblem: OnConfigProblem): ModelSettings {
  try {
    const config = readTritonConfig(text);
    const delay = config.maxQueueDelayMicroseconds;
    return {
      // max_batch_size 0: Triton hands the model each request whole, whatever its first dimension (an
      // outside attack's [3,1,28,28] was refused here as max_batch_size 1): the server's own cap holds.
      maxBatch: config.maxBatchSize > 0 ? config.maxBatchSize : undefined,
      batchDelayMs: delay === undefined ? 0 : Math.min(MAX_DELAY_MS, delay / 1000),
      versionPolicy: config.versionPolicy,
      declaredMaxBatch: config.maxBatchSize,
    };
  } catch (error) {
    onProblem(`invalid ${CONFIG_FILE}: ${(error as Error).message.split('\n')[0]?.slice(0, 160)}`);
    return {};
  }
}

/**
 * A reader of `<root>/<name>/config.pbtxt` for a repository that rescans every second: the file is checked
 * to be a regular file of at most MAX_CONFIG_BYTES before it is read (a FIFO or a link to /dev/zero is
 * refused, never waited on), and parsed again only when its stamp (node/regular-file.ts fileStamp) changed.
 * No file: `{}`.
 * An unchanged file's problem is reported again at every read, so the repository knows it persists.
 * A link that leads out of the model's folder is refused unread: a config is the model's, and its parse
 * errors quote the file (an outside attack linked one to a secret and read its first word in the log). The
 * folder itself may be a link (a release folder swapped in): its config is read where its model files are.
 */
export function cachedSettingsReader(): SettingsReader {
  const cache = new Map<string, { stamp: string; settings: ModelSettings; problem?: string }>();
  // A config that stops being usable (half-written by an editor, swapped for a FIFO) keeps the model on its
  // last good settings rather than the defaults: an outside attack's 1.5 s glitch loaded every version of a
  // newest-only model, with the default batch. No file at all: the defaults.
  const lastGood = new Map<string, ModelSettings>();
  const goneSince = new Map<string, number>();
  const blankSince = new Map<string, number>();
  // What is held belongs to one model folder: deleted and made again, or a release link now leading to
  // another folder, and the new folder starts from its own files (a re-check attack's recreated folder kept
  // the old one's `specific [1]`).
  const folders = new Map<string, string>();
  const forget = (path: string) => {
    for (const map of [cache, lastGood, goneSince, blankSince, folders]) map.delete(path);
  };
  /** Whether a hold counted from when a scan first saw it (`since`) is still within GONE_GRACE_MS. */
  const stillHeld = (since: Map<string, number>, path: string) => {
    if (!since.has(path)) since.set(path, Date.now());
    return Date.now() - (since.get(path) as number) < GONE_GRACE_MS;
  };
  const refused = (path: string, onProblem: OnConfigProblem, cause: string) => {
    cache.delete(path);
    onProblem(cause);
    return lastGood.get(path) ?? {};
  };
  const reader: SettingsReader = async (root, name, onProblem) => {
    const path = join(root, name, CONFIG_FILE);
    let read: Awaited<ReturnType<typeof readRegularFileStamped>>;
    const folder = join(root, name);
    const identity = await stat(folder).then(
      (info) => `${info.dev}:${info.ino}`,
      () => '',
    );
    if (folders.has(path) && folders.get(path) !== identity) forget(path);
    folders.set(path, identity);
    try {
      if ((await insideTarget(folder, path)) === 'outside')
        return refused(path, onProblem, 'links outside its model folder');
      read = await readRegularFileStamped(path, MAX_CONFIG_BYTES, (stamp) => cache.get(path)?.stamp === stamp);
      // The check above followed the link once and the open again: a link swapped in between (an outside
      // attack swapped one as fast as it could) opened a file outside. What was read counts only if the path
      // leads, inside the folder, to the very file that was opened; else this scan keeps the last settings.
      const now = await insideTarget(folder, path).catch(() => undefined);
      if (now === 'outside') return refused(path, onProblem, 'links outside its model folder');
      if (now?.dev !== read.file.dev || now.ino !== read.file.ino) return lastGood.get(path) ?? {};
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return refused(path, onProblem, code ?? 'unreadable');
      // A link to nothing is a problem to report, not a config removed.
      if (await isLink(path)) return refused(path, onProblem, 'ENOENT');
      cache.delete(path);
      // An editor that deletes before it writes: the last good settings hold a few seconds more.
      const good = lastGood.get(path);
      if (good && stillHeld(goneSince, path)) return good;
      lastGood.delete(path);
      goneSince.delete(path);
      return {};
    }
    goneSince.delete(path);
    let entry = cache.get(path);
    if (read.bytes) {
      let problem: string | undefined;
      const text = read.bytes.toString('utf8');
      // An empty file is a rewrite's first instant, not a config asking for the defaults (a re-check attack's
      // editor reloaded a model twice in 1.5 s): the last good settings hold, without a problem to report —
      // for GONE_GRACE_MS from when a scan first saw it so, as for a removed one (a file emptied on purpose
      // applies then). Comments alone are the same instant (an editor's header written first).
      if (withoutComments(text).trim() === '' && lastGood.has(path) && stillHeld(blankSince, path))
        return lastGood.get(path) ?? {};
      blankSince.delete(path);
      const settings = settingsFromText(text, (cause) => {
        problem = cause;
      });
      entry = { stamp: read.stamp, settings: problem ? (lastGood.get(path) ?? {}) : settings, problem };
      if (!problem) lastGood.set(path, settings);
      cache.set(path, entry);
    }
    if (entry?.problem) onProblem(entry.problem);
    return entry?.settings ?? {};
  };
  reader.retain = (root, names) => {
    const kept = new Set([...names].map((name) => join(root, name, CONFIG_FILE)));
    for (const path of folders.keys()) if (path.startsWith(join(root, sep)) && !kept.has(path)) forget(path);
  };
  return reader;
}

/** Text format comments run from `#` to the line's end (a `#` inside a string only matters if the rest is empty). */
const withoutComments = (text: string) => text.replace(/#[^\n]*/g, '');

/**
 * The file `path` leads to now (its real path resolved first, then that path's device and inode: no link is
 * followed between the check and the stat), or 'outside' when that is not within `dir`.
 */
async function insideTarget(dir: string, path: string): Promise<{ dev: number; ino: number } | 'outside'> {
  const [base, target] = await Promise.all([realpath(dir), realpath(path)]);
  if (!target.startsWith(base.endsWith(sep) ? base : `${base}${sep}`)) return 'outside';
  const info = await stat(target);
  return { dev: info.dev, ino: info.ino };
}

const isLink = (path: string) =>
  lstat(path).then(
    (info) => info.isSymbolicLink(),
    () => false,
  );

/** The versions a policy serves, of those present (ascending). */
export function servedVersions(present: number[], policy: TritonVersionPolicy | undefined): Set<number> {
  if (!policy || policy.kind === 'all') return new Set(present);
  if (policy.kind === 'latest') return new Set(present.slice(-Math.max(1, policy.numVersions)));
  const named = new Set(policy.versions);
  return new Set(present.filter((v) => named.has(v)));
}
