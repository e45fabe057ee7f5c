/**
 * The served model repository: every `<root>/<name>/<version>/model.onnx`, loaded into an ORT session
 * with its own batcher, rescanned periodically (polling: portable, and catches files copied in place).
 *
 * It never dies and never drops what it serves: a scan error (a dangling link, a folder it can't read) is
 * logged once per cause, counted, and the rest of the repository is still scanned; a file that fails to load
 * or breaks the model contract is reported (not ready, with the reason) and never replaces the version that
 * is serving; a rewritten file whose bytes did not change is not reloaded; replaced and removed versions
 * are released only after their in-flight requests finish. The default version of a model is its newest
 * one that loaded.
 *
 * Model control follows Triton's modes: `poll` (rescan every interval: the default), `none` (load what is
 * there at start, never rescan) and `explicit` (load and unload only when asked, see load() and unload()).
 */

import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { BATCHING_DEFAULTS } from '../core/contract.ts';
import type { NodeDevice as Device } from '../core/ort-runtime.ts';
import { writeNewFileAtomic } from '../node/files.ts';
import { readRegularFileDigest, sameWrite } from '../node/regular-file.ts';
import { isValidModelName, modelPath, shownName, VERSION_PATTERN } from '../node/repository.ts';
import { ellipsized } from './ellipsized.ts';
import { publicMessage } from './errors.ts';
import { cachedSettingsReader, type ModelSettings, servedVersions } from './model-config.ts';
import { type FoundFile, type ScanProblem, scanRepository } from './repository-scan.ts';
import { MAX_MODEL_BYTES } from './runner/limits.ts';
import { type LoadSettings, ServedVersion } from './served-version.ts';

export { ServedVersion };

/** Versions loaded at once during a scan. */
const PARALLEL_LOADS = 3;
/**
 * Loads a watcher's scan starts, at most; the rest wait for the next scans. A scan waits for its loads, so 150 broken
 * versions dropped in at once (each a runner process) kept a good model added after them from being seen
 * for ~18 s in an outside attack; now the next scan sees it, and loads it first (see `firstToLoad`).
 */
const LOADS_PER_SCAN = 3 * PARALLEL_LOADS;
/**
 * Failed loads one model gets in one scan, at most: under a newest-only policy each broken newest version
 * hands its place to the one before it, one load per round — a re-check attack's 300 broken versions held an
 * upload's scan (and the watcher behind it) 36 s. The rest are tried by the next scans; what serves keeps serving.
 */
const FAILURES_PER_MODEL_PER_SCAN = PARALLEL_LOADS;
/**
 * The same bound for a load call's scan (explicit mode; no watcher follows it): higher, so a good version
 * behind a few broken newer ones still loads in one call, but bounded — an outside attack's load of a model
 * with 2,000 broken versions tried them all (150 s), holding every other model's load and unload. The start's
 * scan has none: in none mode nothing scans after it (a bound there left good versions unloaded for good).
 */
const FAILURES_PER_MODEL_PER_LOAD = 32;

/**
 * Why a load call served none of a model's versions: the newest failures (each cut short, so the answer's
 * 600 characters hold them whole), how many more failed, and how many the bound left for the next call.
 */
function whyNoneLoaded(versions: readonly VersionStatus[], chosen: ReadonlySet<number>): string {
  const failures = versions.filter((v) => v.failure).reverse();
  const shown = failures.slice(0, 3).map((v) => `version ${v.version}: ${ellipsized(v.failure?.error ?? '', 140)}`);
  const tried = new Set(versions.map((v) => v.version));
  const untried = [...chosen].filter((v) => !tried.has(v)).length;
  return [
    shown.join('; ') || 'no version',
    failures.length > shown.length ? `${failures.length - shown.length} older versions failed too` : '',
    untried > 0
      ? `${untried} not tried yet (a load call tries at most ${FAILURES_PER_MODEL_PER_LOAD} broken versions: call again)`
      : '',
  ]
    .filter(Boolean)
    .join('; ');
}

/** Why a model in the repository serves nothing when its config.pbtxt names only versions it lacks. */
const POLICY_CHOOSES_NONE = 'its version policy (config.pbtxt) chooses none of the versions with a model file';

export interface FailedVersion {
  name: string;
  version: number;
  /** Why it is not served, without file-system paths. */
  error: string;
  stamp: string;
  /** The failed file's digest and when it failed: the same bytes touched again are not retried at once. */
  hash?: string;
  at?: number;
  /** The model's settings when it failed (a changed config tries it again). */
  settings?: string;
  /** For want of room, not of the file: tried again at every scan. */
  transient?: boolean;
  /** Its runner crashed or overran: not served again until its file is written (a chmod or a hard link is no write). */
  quarantined?: boolean;
}

/** The key of a model's version, `<model>/<version>`, and the model a key names. */
const versionKey = (f: { name: string; version: number }) => `${f.name}/${f.version}`;
const modelOf = (key: string) => key.slice(0, key.lastIndexOf('/'));

/** A file that failed to load is tried again with the same bytes only after this long (a touch, a copy). */
const SAME_BYTES_RETRY_MS = 30_000;

/** Triton's --model-control-mode. */
export const MODEL_CONTROL_MODES = ['poll', 'explicit', 'none'] as const;
export type ModelControlMode = (typeof MODEL_CONTROL_MODES)[number];

/** A model control request that this mode does not allow, or a model that would not load. */
export class ModelControlError extends Error {
  override name = 'ModelControlError';
}

/** One row of the repository index: Triton's READY, UNAVAILABLE (with why) or LOADING. */
/** One scan's reading of the repository (ModelRepository.readRepository). */
interface ScannedRepository {
  files: FoundFile[];
  filesByName: Map<string, FoundFile[]>;
  settings: Map<string, ModelSettings>;
  /** Every version's key found on disk. */
  present: Set<string>;
  /** Whether a model's version is kept as it is: its folder or entry could not be read. */
  keep: (name: string, key: string) => boolean;
}

export interface IndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'UNAVAILABLE' | 'LOADING';
  reason: string;
}

export interface RepositoryOptions {
  /** poll (default): rescan on watch(); none: the start's scan only; explicit: only models loaded through load(). */
  controlMode?: ModelControlMode;
  /** explicit mode: the models to load at start. */
  loadModels?: string[];
  device?: Device;
  threads?: number;
  maxBatch?: number;
  batchDelayMs?: number;
  /** Longest a model's load and contract check may take (ms). */
  loadBudgetMs?: number;
  /** Longest one inference run may take (ms); a version over it is quarantined. */
  runBudgetMs?: number;
  /** Versions served at once (each is a process); more are not ready, with the reason. */
  maxLoadedVersions?: number;
  /** Images waiting for one version's runs; past them a request fails with QueueFullError (503). */
  maxQueuedImages?: number;
  log?: (line: string) => void;
  onBatch?: (model: string, size: number) => void;
  onLoadFailure?: (model: string) => void;
  onScanError?: (cause: string) => void;
}

/**
 * The defaults of `serve`: the shared batching defaults, the CPU, 1 ORT thread per model; a model may take
 * 30 s to load and check, and 10 s for one run (the zoo's largest takes ~0.1 s for a full batch here).
 */
export const SERVE_DEFAULTS = {
  device: 'cpu' as Device,
  threads: 1,
  maxBatch: BATCHING_DEFAULTS.maxBatch,
  batchDelayMs: BATCHING_DEFAULTS.delayMs,
  loadBudgetMs: 30_000,
  runBudgetMs: 10_000,
  maxLoadedVersions: 32,
  // 32 full runs of the default batch: 6.4 MB of float32 inputs, ~14 MB with their requests, per version,
  // and at most a few seconds' wait for a slow model. Past it: 503 queue_full, as Triton's max_queue_size.
  maxQueuedImages: 2048,
};

/** Causes as metric labels, from a bounded set: errno codes and our fixed words; a file's own text never. */
const FIXED_CAUSES = new Set([
  'invalid model name',
  'not a version number',
  'unreadable',
  'links outside its model folder',
]);
function causeLabel(cause: string): string {
  if (/^E[A-Z]{2,12}$/.test(cause) || FIXED_CAUSES.has(cause)) return cause;
  return cause.startsWith('invalid ') ? 'invalid config' : 'other';
}

/** Version numbers are at most 9 digits (Triton's repository layout as export writes it). */
const MAX_VERSION = 999_999_999;
/** Names a route already uses (/v2/models/stats): a model published under one could not be reached. */
const RESERVED_NAMES = new Set(['stats']);

interface LoadedEntry {
  served: ServedVersion;
  stamp: string;
  /** The model's batching settings it was loaded with (config.pbtxt): a change reloads it. */
  settings: string;
}

/**
 * Control operations (loads, unloads, publishes) of one model under way or waiting their turn, past which
 * another is refused (a publish holds its file's bytes while it waits).
 */
export const MAX_QUEUED_CONTROLS = 8;

/** Too many control operations of one model are waiting (503: retry). */
export class ControlBusyError extends Error {}

/** A publish named a version that exists: nothing the user made is overwritten. */
export class VersionExistsError extends Error {
  override name = 'VersionExistsError';
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

export interface VersionStatus {
  version: number;
  ready: boolean;
  served?: ServedVersion;
  failure?: FailedVersion;
}

export class ModelRepository {
  private readonly loaded = new Map<string, LoadedEntry>();
  private readonly failed = new Map<string, FailedVersion>();
  private readonly reported = new Set<string>();
  /** Each model's settings as of the last scan. */
  private settings = new Map<string, ModelSettings>();
  /** Each model's config.pbtxt (Triton's), checked at every scan, parsed when changed. */
  private readonly readSettings = cachedSettingsReader();
  private timer: ReturnType<typeof setInterval> | undefined;
  private scanning: Promise<void> | undefined;
  private closed = false;
  /** Aborted when the server stops: loads under way are abandoned and their runner processes killed. */
  private readonly stopLoads = new AbortController();
  /** Every version file of the last scan that its version policy serves, by `name/version`. */
  private known = new Map<string, FoundFile>();
  /** Each model's version numbers with a model file as of the last scan, ascending. */
  private versionsOnDisk = new Map<string, number[]>();
  /** A scan has ended (readiness waits for the first one's loads). */
  private scannedOnce = false;
  /** Loaded versions the scan under way will unload once what replaces them is loaded (not counted full). */
  private replaceable = new Set<string>();
  /** Versions being loaded now. */
  private readonly loading = new Set<string>();
  /** Per model: control operations waiting or running, and the promise the next one waits for. */
  private readonly controlling = new Map<string, { waiting: number; last: Promise<void> }>();
  /** explicit mode: the models asked for (load() adds, unload() removes); other modes serve every model. */
  private readonly wanted: Set<string> | undefined;
  /** Under explicit model control, the models --load-model asked for and not unloaded since (readiness). */
  private readonly askedAtStart: Set<string>;

  /** Absolute: every path in a load's error is one publicMessage strips (a relative one reached answers). */
  readonly root: string;

  constructor(
    root: string,
    private readonly options: RepositoryOptions = {},
  ) {
    this.root = resolve(root);
    this.askedAtStart = new Set(this.controlMode === 'explicit' ? options.loadModels : []);
    if (this.controlMode === 'explicit') this.wanted = new Set(options.loadModels ?? []);
    // Silently serving everything instead would surprise whoever named the models.
    else if (options.loadModels?.length)
      throw new ModelControlError(
        `--load-model needs --model-control-mode explicit (this server: ${this.controlMode})`,
      );
  }

  get controlMode(): ModelControlMode {
    return this.options.controlMode ?? 'poll';
  }

  private isWanted(name: string): boolean {
    return this.wanted === undefined || this.wanted.has(name);
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  /**
   * Bring the loaded set in line with the files (one scan at a time). Never rejects. `loads` bounds the loads
   * it starts (the watcher's scans; start-up and model control load everything they find); without a watcher,
   * `failuresPerModel` bounds each model's failed loads (a load call's scan).
   */
  scan(loads = Number.POSITIVE_INFINITY, failuresPerModel = Number.POSITIVE_INFINITY): Promise<void> {
    this.scanning ??= this.scanOnce(loads, failuresPerModel)
      .catch((error) => this.problem({ where: '.', cause: publicMessage(String((error as Error)?.message ?? error)) }))
      .finally(() => {
        this.scanning = undefined;
        this.scannedOnce = true;
      });
    return this.scanning;
  }

  /** Log a scan problem once per cause (again only after it went away and came back). */
  private problem(p: ScanProblem): void {
    const key = `${p.where}\0${p.cause}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.options.onScanError?.(causeLabel(p.cause));
    this.log(`model repository: cannot use ${p.where} (${p.cause}); serving the rest`);
  }

  private async scanOnce(loads: number, failuresPerModel: number): Promise<void> {
    const disk = await this.readRepository();
    const desired = await this.loadDesired(disk, loads, failuresPerModel);
    this.unloadUnwanted(disk, desired);
  }

  /**
   * What the repository holds now: its files by model, each model's settings (config.pbtxt), problems
   * reported; failures of files that are gone forgotten.
   */
  private async readRepository(): Promise<ScannedRepository> {
    const scanned = await scanRepository(this.root);
    const problems = [...scanned.problems];
    const configProblems: ScanProblem[] = [];
    const read = this.readSettings;
    const filesByName = new Map<string, FoundFile[]>();
    for (const f of scanned.files) {
      const files = filesByName.get(f.name) ?? [];
      files.push(f);
      filesByName.set(f.name, files);
    }
    const settings = new Map<string, ModelSettings>();
    for (const name of filesByName.keys())
      settings.set(
        name,
        await read(this.root, name, (cause) => configProblems.push({ where: `${name}/config.pbtxt`, cause })),
      );
    this.settings = settings;
    this.versionsOnDisk = new Map(
      [...filesByName].map(([name, files]) => [name, files.map((f) => f.version).sort((a, b) => a - b)]),
    );
    this.readSettings.retain?.(this.root, new Set(filesByName.keys()));
    const present = new Set(scanned.files.map(versionKey));
    for (const key of this.failed.keys()) if (!present.has(key)) this.failed.delete(key);
    // Config problems are reported, and the model served with the defaults; only a folder we could not
    // read keeps what it serves (its files are unknown, not gone): a bad config.pbtxt must not pin versions.
    const reported = [...problems, ...configProblems, ...scanned.skipped];
    const current = new Set(reported.map((p) => `${p.where}\0${p.cause}`));
    for (const key of this.reported) if (!current.has(key)) this.reported.delete(key);
    for (const p of reported) this.problem(p);
    // What we could not read keeps what it serves (its files are unknown, not gone): a model folder, or one
    // version's entry — not the model's other versions (an unreadable v7 pinned every version before).
    const unreadable = new Set(problems.map((p) => p.where.split('/').slice(0, 2).join('/')));
    const keep = (name: string, key: string) => unreadable.has(name) || unreadable.has(key) || unreadable.has('.');
    return { files: scanned.files, filesByName, settings, present, keep };
  }

  /**
   * The files a version policy (config.pbtxt) serves, as Triton would — of the versions whose file has not
   * failed to load: a broken or half-copied new version never takes the one serving away. (A loaded version
   * whose new file failed still serves its previous file: it counts.)
   */
  private desiredFiles({ filesByName, settings }: ScannedRepository): FoundFile[] {
    const failed = (f: FoundFile) => this.failsAsIs(f) && !this.loaded.has(versionKey(f));
    return [...filesByName].flatMap(([name, files]) => {
      const loadable = files.filter((f) => !failed(f)).map((f) => f.version);
      const chosen = servedVersions(
        loadable.sort((a, b) => a - b),
        settings.get(name)?.versionPolicy,
      );
      return files.filter((f) => chosen.has(f.version));
    });
  }

  /**
   * Load what the policy wants and is not loaded (or changed, or whose settings changed), then ask the policy
   * again — a version that failed gives its place to the one before it — until nothing is left to load or
   * this scan's loads are spent; the files the policy wants in the end. Only then is what the policy no
   * longer serves unloaded (unloadUnwanted), so a request always finds a version: a new one replaces the
   * newest once it is loaded, an older one comes back before a removed newest goes (a rollback), and a model
   * at --max-loaded-versions may load the version that replaces one of its own.
   */
  private async loadDesired(disk: ScannedRepository, loads: number, failuresPerModel: number): Promise<FoundFile[]> {
    let desired = this.desiredFiles(disk);
    let left = loads;
    const attempted = new Set<string>(); // once a scan each (a file that vanished mid-load stays listed)
    const failures = new Map<string, number>(); // failed loads per model this scan
    // The bound leaves the rest to the next scans; without a watcher (explicit or none) there are none, and a
    // good version behind three broken newer ones was never loaded (a re-check attack): there it is higher.
    const watched = this.controlMode === 'poll';
    while (left > 0 && !this.closed) {
      const wanted = new Set(desired.map(versionKey));
      this.replaceable = new Set([...this.loaded.keys()].filter((key) => !wanted.has(key)));
      // Per model, no more this round than the failures it has left this scan (a load call's unbounded scan
      // retried a model's 150 broken versions in one round before).
      const taken = new Map<string, number>();
      const changed = desired
        .filter((f) => {
          const key = versionKey(f);
          const loaded = this.loaded.get(key);
          const stale = loaded?.stamp !== f.stamp || loaded.settings !== this.settingsKey(f.name);
          return this.isWanted(f.name) && stale && !this.failsAsIs(f) && !attempted.has(key);
        })
        .sort(this.firstToLoad())
        .filter((f) => {
          const count = (taken.get(f.name) ?? 0) + 1;
          taken.set(f.name, count);
          const bound = watched ? FAILURES_PER_MODEL_PER_SCAN : failuresPerModel;
          return (failures.get(f.name) ?? 0) + count <= bound;
        })
        .slice(0, left);
      if (changed.length === 0) break;
      // A version that waits for room costs no runner when there is none: it does not spend the scan's loads
      // (twelve of them spent every scan's nine before, and a model's own new version never loaded).
      left -= changed.filter((f) => !this.failed.get(versionKey(f))?.transient).length;
      for (const f of changed) attempted.add(versionKey(f));
      // A few at a time: each load starts a runner process, which mostly waits on its own start-up.
      const next = changed.values();
      const worker = async () => {
        for (const file of next) {
          if (this.closed) return;
          await this.loadFile(versionKey(file), file);
        }
      };
      await Promise.all(Array.from({ length: PARALLEL_LOADS }, worker));
      for (const f of changed) if (this.failsAsIs(f)) failures.set(f.name, (failures.get(f.name) ?? 0) + 1);
      desired = this.desiredFiles(disk);
    }
    this.replaceable = new Set();
    return desired;
  }

  /** Unload what the policy no longer serves (`desired` the files it does), but what must keep serving. */
  private unloadUnwanted({ files, filesByName, present, keep }: ScannedRepository, desired: FoundFile[]) {
    // Known: what the policy serves, and what failed (a load call of a model whose every version failed
    // answers with the reason, not "no such model").
    this.known = new Map(
      [...desired, ...files.filter((f) => this.failed.has(versionKey(f)))].map((f) => [versionKey(f), f]),
    );
    const wanted = new Set(desired.filter((f) => this.isWanted(f.name)).map(versionKey));
    // A model some of whose wanted versions are still to load (this scan's loads spent) keeps what it serves —
    // unless the version waits for room and the model serves a wanted one already: the versions kept would be
    // what holds the room (a removed version was served for good, over --max-loaded-versions, before).
    const servesWanted = new Set([...this.loaded.keys()].filter((key) => wanted.has(key)).map(modelOf));
    const pending = new Set(
      desired
        .filter((f) => wanted.has(versionKey(f)) && !this.loaded.has(versionKey(f)) && !this.failsAsIs(f))
        .filter((f) => !(this.failed.get(versionKey(f))?.transient && servesWanted.has(f.name)))
        .map((f) => f.name),
    );
    // A policy whose every chosen version fails to load keeps what its model serves: a rollback by policy to
    // a broken version left the model serving nothing (a file that fails never replaces the version serving).
    const choosesOnlyFailures = (name: string) => {
      const chosen = this.chosenOnDisk(name);
      const modelFiles = filesByName.get(name) ?? [];
      return chosen.size > 0 && modelFiles.filter((f) => chosen.has(f.version)).every((f) => this.failsAsIs(f));
    };
    for (const [key, { served: version }] of this.loaded) {
      if (wanted.has(key) || keep(version.name, key)) continue;
      if (this.isWanted(version.name) && pending.has(version.name)) continue;
      if (present.has(key) && !servesWanted.has(version.name) && choosesOnlyFailures(version.name)) continue;
      this.loaded.delete(key);
      void version.retire();
      const why = !this.isWanted(version.name)
        ? 'unloaded'
        : present.has(key)
          ? 'not served by its version policy'
          : 'file removed';
      this.log(`unloaded ${key} (${why})`);
    }
  }

  /** The settings a version of `name` is loaded with, as a key (batching from config.pbtxt). */
  private settingsKey(name: string): string {
    const own = this.settings.get(name);
    return JSON.stringify([own?.maxBatch, own?.batchDelayMs]);
  }

  /**
   * Whether `f` is known to fail to load as it is now: its file and its model's settings unchanged since it
   * failed, and not for want of room (--max-loaded-versions: tried again at every scan). A re-check attack
   * fixed a config whose max_batch_size had failed a version, and the version was never tried again.
   */
  private failsAsIs(f: FoundFile): boolean {
    const failure = this.failed.get(versionKey(f));
    return (
      !!failure && !failure.transient && failure.stamp === f.stamp && failure.settings === this.settingsKey(f.name)
    );
  }

  /** Whether a file with digest `hash` needs no load: the bytes serving, or the bytes that just failed. */
  private unchanged(
    hash: string,
    file: FoundFile,
    previous: LoadedEntry | undefined,
    failure: FailedVersion | undefined,
  ): boolean {
    if (previous && previous.served.hash === hash && previous.settings === this.settingsKey(file.name)) {
      previous.stamp = file.stamp; // touched or copied over with the same bytes: nothing to reload
      // The served bytes are back: a failed reload in between is over (its reason was listed for good).
      this.failed.delete(versionKey(file));
      return true;
    }
    if (
      failure?.hash === hash &&
      failure.settings === this.settingsKey(file.name) &&
      (failure.quarantined
        ? sameWrite(failure.stamp, file.stamp)
        : Date.now() - (failure.at ?? 0) < SAME_BYTES_RETRY_MS)
    ) {
      failure.stamp = file.stamp; // the bytes that just failed, touched: no new runner process for them yet
      return true;
    }
    return false;
  }

  /**
   * Versions waiting for room last; before them models with nothing loaded and nothing failed (a new model),
   * then newest versions first.
   */
  private firstToLoad(): (a: FoundFile, b: FoundFile) => number {
    const tried = new Set([...this.loaded.values()].map((e) => e.served.name));
    for (const f of this.failed.values()) tried.add(f.name);
    const waits = (f: FoundFile) => Number(this.failed.get(versionKey(f))?.transient === true);
    return (a, b) =>
      waits(a) - waits(b) || Number(tried.has(a.name)) - Number(tried.has(b.name)) || b.version - a.version;
  }

  private async loadFile(key: string, file: FoundFile): Promise<void> {
    const previous = this.loaded.get(key);
    // Each loaded version is a runner process (~60 MB): a repository of thousands must not fork thousands.
    const most = this.options.maxLoadedVersions ?? SERVE_DEFAULTS.maxLoadedVersions;
    // Versions being loaded count too (their `loading` mark is set before the first await of the load), each
    // net of a version its model no longer wants, which it replaces (other models' swaps at capacity were
    // counted whole and refused this one for no reason in a re-check attack).
    // (A load of a key already loaded replaces its own file and adds nothing.)
    const adding = [...this.loading].filter((k) => !this.loaded.has(k));
    const inFlight = new Map<string, number>([[file.name, 1]]);
    for (const k of adding) inFlight.set(modelOf(k), (inFlight.get(modelOf(k)) ?? 0) + 1);
    let replaced = 0;
    for (const [model, loads] of inFlight) {
      const replaceable = [...this.replaceable].filter((k) => modelOf(k) === model && this.loaded.has(k)).length;
      replaced += Math.min(loads, replaceable);
    }
    if (!previous && this.loaded.size + adding.length + 1 - replaced > most)
      return this.fail(
        key,
        file,
        `not loaded: ${most} versions are loaded already (serve --max-loaded-versions)`,
        undefined,
        true,
      );
    this.loading.add(key);
    try {
      await this.loadFileNow(key, file, previous);
    } finally {
      this.loading.delete(key);
    }
  }

  private async loadFileNow(key: string, file: FoundFile, previous: LoadedEntry | undefined): Promise<void> {
    // A file whose bytes are known (loaded, or just failed) is first hashed from disk a few MiB at a time:
    // touched, it is read whole only if its bytes changed.
    const failure = this.failed.get(key);
    if (previous || failure?.hash) {
      const known = await readRegularFileDigest(file.path, MAX_MODEL_BYTES, false).catch(() => undefined);
      if (known && this.unchanged(known.sha256, file, previous, failure)) return;
    }
    let bytes: Uint8Array;
    let hash: string;
    try {
      // A regular file under the cap, read through the descriptor that was checked (a FIFO never blocks),
      // its digest taken a few MiB per read.
      const read = await readRegularFileDigest(file.path, MAX_MODEL_BYTES, true);
      bytes = read.bytes as Buffer;
      hash = read.sha256;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // vanished since the listing: the next scan sees it gone
      return this.fail(key, file, code ? `cannot read model.onnx (${code})` : (error as Error).message);
    }
    if (this.unchanged(hash, file, previous, failure)) return;
    try {
      const settings = this.loadSettings(file.name);
      // The runner's failure names the version it served: a newer load of the key is not quarantined for it.
      let self: ServedVersion | undefined;
      const served = await ServedVersion.load(
        file.name,
        file.version,
        file.path,
        bytes,
        { ...settings, onQuarantine: (reason) => this.quarantine(key, file, self, reason) },
        hash,
      );
      self = served;
      // Unloaded while it loaded: not served.
      if (this.closed || !this.isWanted(file.name)) return void served.retire();
      this.loaded.set(key, { served, stamp: file.stamp, settings: this.settingsKey(file.name) });
      this.failed.delete(key);
      if (previous) void previous.served.retire();
      const why = !previous ? '' : previous.served.hash === hash ? ' (new settings)' : ' (replaced the previous file)';
      this.log(`loaded ${key} on ${served.provider}${why}`);
    } catch (error) {
      this.fail(key, file, (error as Error).message ?? String(error), hash);
    }
  }

  private loadSettings(name: string): LoadSettings {
    const o = this.options;
    const own = this.settings.get(name) ?? {};
    const maxBatch = own.maxBatch ?? o.maxBatch ?? SERVE_DEFAULTS.maxBatch;
    return {
      device: o.device ?? SERVE_DEFAULTS.device,
      threads: o.threads ?? SERVE_DEFAULTS.threads,
      maxBatch,
      declaredMaxBatch: own.declaredMaxBatch,
      batchDelayMs: own.batchDelayMs ?? o.batchDelayMs ?? SERVE_DEFAULTS.batchDelayMs,
      signal: this.stopLoads.signal,
      budgets: {
        loadMs: o.loadBudgetMs ?? SERVE_DEFAULTS.loadBudgetMs,
        runMs: o.runBudgetMs ?? SERVE_DEFAULTS.runBudgetMs,
      },
      // A request of one full run always fits an empty queue.
      maxQueued: Math.max(o.maxQueuedImages ?? SERVE_DEFAULTS.maxQueuedImages, maxBatch),
      onBatch: (size) => o.onBatch?.(name, size),
    };
  }

  /** A served version stopped working: not served (not ready, with the reason) until its file changes. */
  private quarantine(key: string, file: FoundFile, served: ServedVersion | undefined, reason: string): void {
    // Matched by the version, not by the file's stamp at load: a touched file's stamp moves on while the same
    // bytes serve (an outside attack's touch left a crashed version ready, answering 503, for good).
    const entry = this.loaded.get(key);
    if (!entry || !served || entry.served !== served) return;
    this.loaded.delete(key);
    void entry.served.retire();
    // With the bytes' digest and stamp: a chmod, `touch -a` or a backup's hard link moves only the stamp's
    // ctime, and lifted the quarantine in a re-check attack; a write (or a touch) of the file lifts it.
    this.fail(
      key,
      { ...file, stamp: entry.stamp },
      `quarantined: ${reason}; it is served again once its file changes`,
      served.hash,
      false,
      true,
    );
  }

  private fail(
    key: string,
    file: FoundFile,
    reason: string,
    hash?: string,
    transient = false,
    quarantined = false,
  ): void {
    const error = publicMessage(reason);
    const settings = this.settingsKey(file.name);
    const before = this.failed.get(key);
    // Said once: the same failure of the same file, or still no room (touching the file changes nothing).
    const again = before?.error === error && (before.stamp === file.stamp || (transient && before.transient));
    this.failed.set(key, {
      name: file.name,
      version: file.version,
      error,
      stamp: file.stamp,
      hash,
      at: Date.now(),
      settings,
      transient,
      quarantined,
    });
    if (again) return;
    this.options.onLoadFailure?.(file.name);
    this.log(`not serving ${key}: ${error}${this.loaded.has(key) ? ' (still serving the previous file)' : ''}`);
  }

  /** Rescan every `intervalMs` (poll mode only); the timer never keeps the process alive and never throws. */
  watch(intervalMs = 1000): void {
    if (this.controlMode !== 'poll') return;
    this.timer ??= setInterval(() => void this.scan(LOADS_PER_SCAN), intervalMs);
    this.timer.unref();
  }

  /**
   * The server is stopping: no more scans, loads under way are abandoned (their runner processes killed: one
   * kept a stopped server alive past its exit timeout in an outside attack), and readiness says no (requests
   * that arrive from here are refused by the routes: `stopping`).
   */
  beginShutdown(): void {
    this.closed = true;
    this.stopLoads.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the server is stopping (beginShutdown or close). */
  get stopping(): boolean {
    return this.closed;
  }

  /**
   * Retires every version. A scan's load under way is waited for up to `waitMs`: it may take its whole load
   * budget, and one that ends later retires itself (loadFileNow serves nothing once closed; its runner process
   * ends with this one).
   */
  async close(waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.beginShutdown();
    await Promise.all([...this.loaded.values()].map(({ served }) => served.retire()));
    this.loaded.clear();
    if (!Number.isFinite(waitMs)) return void (await this.scanning);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.scanning, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /** Names of models with at least one file, in order. */
  /** The settings a model's config.pbtxt gave at the last scan (`{}` without one). */
  settingsOf(name: string): ModelSettings {
    return this.settings.get(name) ?? {};
  }

  names(): string[] {
    const all = [
      ...[...this.loaded.values()].map((l) => l.served.name),
      ...[...this.failed.values()].map((f) => f.name),
    ];
    return [...new Set(all)].sort();
  }

  versions(name: string): VersionStatus[] {
    const versions = new Map<number, VersionStatus>();
    for (const f of this.failed.values())
      if (f.name === name) versions.set(f.version, { version: f.version, ready: false, failure: f });
    for (const { served } of this.loaded.values()) {
      if (served.name === name)
        versions.set(served.version, { ...versions.get(served.version), version: served.version, ready: true, served });
    }
    return [...versions.values()].sort((a, b) => a.version - b.version);
  }

  /**
   * explicit mode: serve `name` (its versions load now; a changed file reloads). Throws ModelNotFoundError
   * when the repository has no such model, ModelControlError when no version of it loaded (with why).
   */
  async load(name: string): Promise<void> {
    const wanted = this.explicitOnly();
    await this.inTurn(name, () => this.loadNow(wanted, name));
  }

  private async loadNow(wanted: Set<string>, name: string): Promise<void> {
    // A load that fails leaves the model as wanted as it was: it was served later, with no load call, once
    // another model's load rescanned after its file was fixed (an outside attack; Triton does not).
    const wasWanted = wanted.has(name);
    wanted.add(name);
    try {
      await this.loadWanted(name);
    } catch (error) {
      if (!wasWanted) wanted.delete(name);
      throw error;
    }
  }

  private async loadWanted(name: string): Promise<void> {
    await this.scanning; // a scan under way may have read the wanted set before the model was added
    await this.scan(Number.POSITIVE_INFINITY, FAILURES_PER_MODEL_PER_LOAD);
    const present = this.versionsOnDisk.get(name);
    if (!present) throw new ModelNotFoundError(`the repository has no model '${shownName(name)}'`);
    const versions = this.versions(name);
    // A changed file (or config) that did not load leaves its version serving what it served, and the load
    // fails, as Triton answers a failed reload (it answered 200 here; only the log told).
    const notReloaded = versions.filter((v) => v.ready && v.failure);
    if (notReloaded.length > 0)
      throw new ModelControlError(
        `model '${name}' did not reload: ${notReloaded.map((v) => `version ${v.version}: ${v.failure?.error}`).join('; ')} (what it served before still serves)`,
      );
    if (versions.some((v) => v.ready)) return;
    // A policy naming only versions the folder lacks: that is why, not an older version's failure.
    const chosen = servedVersions(present, this.settings.get(name)?.versionPolicy);
    if (chosen.size === 0) {
      const listed =
        present.length > 10 ? `${present.slice(0, 10).join(', ')}, … ${present.length} in all` : present.join(', ');
      throw new ModelControlError(`model '${name}' did not load: ${POLICY_CHOOSES_NONE} (${listed})`);
    }
    throw new ModelControlError(`model '${name}' did not load: ${whyNoneLoaded(versions, chosen)}`);
  }

  /**
   * Publish `bytes` as version `version` of `name` (the next version when undefined): written atomically,
   * never over an existing version (ModelControlError), then loaded through the usual checks at once. A
   * file that does not load is removed again (it was ours) and the reason thrown; else the version serves.
   */
  publish(name: string, version: number | undefined, bytes: Uint8Array): Promise<number> {
    // Concurrent uploads each pick the version after the one before lands (they all picked the same next
    // version, and all but one got a 409).
    return this.inTurn(name, () => this.publishNow(name, version, bytes));
  }

  /**
   * Run `work`, a control operation on model `name`, after those of it already asked for (as Triton orders
   * a model's control calls): a load that raced an unload reported "no version", and one that raced a
   * publish could drop the published file from the wanted set before its scan.
   */
  private async inTurn<T>(name: string, work: () => Promise<T>): Promise<T> {
    const queue = this.controlling.get(name) ?? { waiting: 0, last: Promise.resolve() };
    if (queue.waiting >= MAX_QUEUED_CONTROLS)
      throw new ControlBusyError(
        `model '${shownName(name)}' has ${queue.waiting} loads, unloads or publishes under way or waiting; retry when they are done`,
      );
    queue.waiting++;
    this.controlling.set(name, queue);
    const mine = queue.last.then(work);
    queue.last = mine.then(
      () => {},
      () => {},
    );
    try {
      return await mine;
    } finally {
      if (--queue.waiting === 0) this.controlling.delete(name);
    }
  }

  /** The wanted set, which only explicit mode has; elsewhere loads and unloads are refused. */
  private explicitOnly(): Set<string> {
    if (!this.wanted)
      throw new ModelControlError(`models load and unload only in explicit mode (this server: ${this.controlMode})`);
    return this.wanted;
  }

  private async publishNow(name: string, version: number | undefined, bytes: Uint8Array): Promise<number> {
    if (!isValidModelName(name) || RESERVED_NAMES.has(name))
      throw new ModelControlError(`'${shownName(name)}' is not a valid model name (or is a route's own word)`);
    const present = await readdir(join(this.root, name)).catch(() => [] as string[]);
    const numbers = present.filter((v) => VERSION_PATTERN.test(v)).map(Number);
    // A fold, not Math.max(...numbers): a folder can hold more versions than a call has room for arguments.
    const chosen = version ?? numbers.reduce((most, n) => Math.max(most, n), 0) + 1;
    if (chosen > MAX_VERSION)
      throw new ModelControlError(`model '${name}' has no version number left (the largest is ${MAX_VERSION})`);
    const path = modelPath(this.root, name, chosen);
    // Plain folders only, as export writes them: a link would write through it (outside the repository, or
    // nowhere), and a file in a folder's place fails mkdir (which was a 500).
    const folders: [string, string][] = [
      [join(this.root, name), 'folder'],
      [dirname(path), `version ${chosen}`],
    ];
    for (const [folder, what] of folders) {
      const found = await lstat(folder).catch(() => undefined);
      if (found && !found.isDirectory())
        throw new ModelControlError(
          `model '${name}' ${what} in the repository is ${found.isSymbolicLink() ? 'a link' : 'not a folder'}; publish refused`,
        );
    }
    try {
      await writeNewFileAtomic(path, bytes);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST')
        throw new VersionExistsError(`model '${name}' already has version ${chosen}; publish it as a new version`);
      // The folders changed under us since the check above.
      if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENOENT')
        throw new ModelControlError(`model '${name}' could not be written: its folders changed in the repository`);
      throw error;
    }
    // A new version is served (as Triton's load with a file override); one that fails leaves the model as
    // wanted as it was (an outside attack's failed upload brought back a model the operator had unloaded).
    const wasWanted = this.wanted?.has(name) ?? true;
    this.wanted?.add(name);
    await this.scanning;
    await this.scan();
    const status = this.versions(name).find((v) => v.version === chosen);
    if (status?.ready) return chosen;
    await rm(path, { force: true });
    await rmdir(dirname(path)).catch(() => {});
    await rmdir(join(this.root, name)).catch(() => {}); // only when empty: a folder this publish made
    if (!wasWanted) this.wanted?.delete(name);
    await this.scan();
    throw new ModelControlError(
      `model '${name}' version ${chosen} did not load: ${status?.failure?.error ?? 'it is not served (version policy?)'}`,
    );
  }

  /**
   * explicit mode: stop serving `name`, after the loads and publishes of it asked for earlier; requests in
   * flight finish on the versions they hold.
   */
  async unload(name: string): Promise<void> {
    const wanted = this.explicitOnly();
    await this.inTurn(name, async () => this.unloadNow(wanted, name));
  }

  private unloadNow(wanted: Set<string>, name: string): void {
    if (!this.versionsOnDisk.has(name) && !wanted.has(name) && this.versions(name).length === 0)
      throw new ModelNotFoundError(`the repository has no model '${shownName(name)}'`);
    wanted.delete(name);
    this.askedAtStart.delete(name);
    for (const [key, { served }] of this.loaded) {
      if (served.name !== name) continue;
      this.loaded.delete(key);
      void served.retire(); // released once its last lease ends
      this.log(`unloaded ${key} (unloaded)`);
    }
    for (const [key, failed] of this.failed) if (failed.name === name) this.failed.delete(key);
  }

  /** Every version in the repository (served or not), as Triton's repository index lists them. */
  index(): IndexEntry[] {
    const keys = new Set([...this.known.keys(), ...this.loaded.keys(), ...this.failed.keys(), ...this.loading]);
    const listed = new Set([...keys].map(modelOf));
    const notLoaded = (name: string) => (this.isWanted(name) ? 'not loaded yet' : 'unloaded (explicit model control)');
    return (
      [...keys]
        .map((key): IndexEntry => {
          const [name = '', version = ''] = key.split('/');
          const failure = this.failed.get(key);
          const state = this.loaded.has(key) ? 'READY' : this.loading.has(key) ? 'LOADING' : 'UNAVAILABLE';
          const reason = state !== 'UNAVAILABLE' ? '' : (failure?.error ?? notLoaded(name));
          return { name, version, state, reason };
        })
        // A model whose version policy chooses none of its versions is in the repository all the same; one
        // found by a scan still under way (the first: the known set is written at its end) is not loaded yet.
        .concat(
          [...this.versionsOnDisk.keys()]
            .filter((name) => !listed.has(name))
            .flatMap((name): IndexEntry[] => {
              const chosen = [...this.chosenOnDisk(name)];
              if (chosen.length === 0)
                return [{ name, version: '', state: 'UNAVAILABLE', reason: POLICY_CHOOSES_NONE }];
              return chosen.map((v) => ({ name, version: String(v), state: 'UNAVAILABLE', reason: notLoaded(name) }));
            }),
        )
        .sort((a, b) => (a.name === b.name ? Number(a.version) - Number(b.version) : a.name < b.name ? -1 : 1))
    );
  }

  /** The versions of `name` on disk that its version policy serves, as the last scan read them. */
  private chosenOnDisk(name: string): Set<number> {
    return servedVersions(this.versionsOnDisk.get(name) ?? [], this.settings.get(name)?.versionPolicy);
  }

  /**
   * Why `name` has no version loaded or failed: unknown; on disk with a version policy that chooses none;
   * not loaded under explicit model control; or not loaded yet. The last covers a server's first scan, whose
   * known set is written only at its end: a model still loading answered "its version policy chooses none"
   * for ~100 ms after readiness turned 200 (an outside attack).
   */
  absentBecause(name: string): string {
    const onDisk = this.versionsOnDisk.get(name);
    const known = [...this.known.values()].some((f) => f.name === name);
    if (!onDisk && !known) return `unknown model '${shownName(name)}'`;
    if (onDisk && this.chosenOnDisk(name).size === 0) return `model '${name}' is not served: ${POLICY_CHOOSES_NONE}`;
    if (!this.isWanted(name))
      return `model '${name}' is not loaded (explicit model control: POST /v2/repository/models/${name}/load)`;
    return `model '${name}' is not loaded yet: its versions are loading`;
  }

  /** The served version: `version`, or the newest loaded one; the first model by name when none is given. */
  get(name?: string, version?: number): ServedVersion {
    // gRPC sends an absent model_name as '': a name nobody has, not "any model".
    if (name === '') throw new ModelNotFoundError("unknown model '': a model name is required");
    const model = name ?? this.names().find((n) => this.versions(n).some((v) => v.ready));
    if (!model) throw new ModelNotFoundError('no model is loaded');
    const versions = this.versions(model);
    if (versions.length === 0) throw new ModelNotFoundError(this.absentBecause(model));
    if (version === undefined) {
      const newest = versions.filter((v) => v.ready).at(-1)?.served;
      if (!newest) {
        const last = versions.at(-1)?.failure;
        const why = last ? ` (version ${last.version}: ${last.error})` : '';
        throw new ModelNotFoundError(`model '${model}' has no version that loaded${why}`);
      }
      return newest;
    }
    const entry = versions.find((v) => v.version === version);
    if (!entry) throw new ModelNotFoundError(`model '${model}' has no version ${version}`);
    if (!entry.served)
      throw new ModelNotFoundError(`model '${model}' version ${version} is not served: ${entry.failure?.error}`);
    return entry.served;
  }

  /**
   * Run `work` with a version held: it stays loaded until `work` settles, even if its file is replaced
   * or removed meanwhile.
   */
  async use<T>(name: string | undefined, version: number | undefined, work: (model: ServedVersion) => Promise<T>) {
    const model = this.get(name, version);
    const release = model.acquire();
    try {
      return await work(model);
    } finally {
      release();
    }
  }

  /** Every loaded version (of `name`, when given), by name then version. */
  servedVersions(name?: string): ServedVersion[] {
    return [...this.loaded.values()]
      .map((l) => l.served)
      .filter((s) => name === undefined || s.name === name)
      .sort((a, b) => (a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1));
  }

  get readyCount(): number {
    return this.loaded.size;
  }

  /**
   * Ready to serve (the protocol's server readiness): the first scan's loads have ended, the server is not
   * stopping, and a model is loaded — under explicit model control, every model --load-model asked for (and not
   * unloaded since) serves a version, however many that is: none at all is ready, as Triton (never ready, a pod
   * started without --load-model was never sent the load call), and one that failed is not (it was ready with
   * `--load-model nosuch`, where Triton refuses to start). A load call's model does not count: counted, every
   * load call made the server unready while it ran, and a client retrying a broken one kept a healthy server
   * out of service (a re-check). Ready at the first load instead, other models found at start answered 404 for
   * ~1.3 s while a load balancer sent them traffic (an outside attack), as Triton is not ready before its
   * start-up loads end.
   */
  get ready(): boolean {
    if (!this.scannedOnce || this.stopping) return false;
    if (this.wanted === undefined) return this.loaded.size > 0;
    return [...this.askedAtStart].every((name) => this.versions(name).some((v) => v.ready));
  }
}
