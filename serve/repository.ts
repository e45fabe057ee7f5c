/**
 * The served model repository: every `<root>/<name>/<version>/model.onnx`, loaded into an ORT session
 * with its own batcher, rescanned periodically. New or changed files are loaded while serving; a file
 * that fails to load is reported and never replaces the version that is serving; removed versions are
 * unloaded. The default version of a model is its newest one that loaded.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../export/onnx/codec.ts';
import { describeModel } from '../export/onnx/describe.ts';
import { listModelFiles, type ModelFile } from '../export/repository.ts';
import { normalizationFolded } from '../runtime/contract.ts';
import { createSession, type Device, type Provider } from '../runtime/execution.ts';
import { Batcher } from './batcher.ts';

export interface ServedVersion {
  name: string;
  version: number;
  path: string;
  provider: Provider;
  metadata: Record<string, string>;
  inputName: string;
  logitsName: string;
  /** Models made elsewhere expect the tutorial's normalized input unless their metadata says otherwise. */
  normalizesInput: boolean;
  batcher: Batcher;
  session: ort.InferenceSession;
  stamp: string;
}

export interface FailedVersion {
  name: string;
  version: number;
  path: string;
  error: string;
  stamp: string;
}

export interface RepositoryOptions {
  device?: Device;
  threads?: number;
  maxBatch?: number;
  batchDelayMs?: number;
  log?: (line: string) => void;
  onBatch?: (model: string, size: number) => void;
  onLoadFailure?: (model: string) => void;
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

const fileStamp = (path: string) => {
  const s = statSync(path);
  return `${s.size}:${s.mtimeMs}`;
};

export class ModelRepository {
  private readonly loaded = new Map<string, ServedVersion>();
  private readonly failed = new Map<string, FailedVersion>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private scanning: Promise<void> | undefined;

  constructor(
    readonly root: string,
    private readonly options: RepositoryOptions = {},
  ) {}

  private log(line: string): void {
    this.options.log?.(line);
  }

  /** Files present now: key `<name>/<version>` → file. */
  private discover(): Map<string, ModelFile> {
    return new Map(listModelFiles(this.root).map((file) => [`${file.name}/${file.version}`, file]));
  }

  /** Bring the loaded set in line with the files (one scan at a time). */
  scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const found = this.discover();
    for (const [key, served] of this.loaded) {
      if (!found.has(key)) {
        this.loaded.delete(key);
        await served.session.release();
        this.log(`unloaded ${key} (file removed)`);
      }
    }
    for (const key of this.failed.keys()) if (!found.has(key)) this.failed.delete(key);
    for (const [key, file] of found) {
      let stamp: string;
      try {
        stamp = fileStamp(file.path);
      } catch {
        continue; // vanished between listing and stat
      }
      if (this.loaded.get(key)?.stamp === stamp || this.failed.get(key)?.stamp === stamp) continue;
      try {
        const served = await this.load(file.name, file.version, file.path, stamp);
        const previous = this.loaded.get(key);
        this.loaded.set(key, served);
        this.failed.delete(key);
        if (previous) await previous.session.release();
        this.log(`loaded ${key} on ${served.provider}${previous ? ' (replaced the previous file)' : ''}`);
      } catch (error) {
        const message = (error as Error).message.split('\n')[0] ?? 'unknown error';
        this.failed.set(key, { ...file, error: message, stamp });
        this.options.onLoadFailure?.(file.name);
        this.log(
          `failed to load ${file.path}: ${message}${this.loaded.has(key) ? ' (still serving the previous file)' : ''}`,
        );
      }
    }
  }

  private async load(name: string, version: number, path: string, stamp: string): Promise<ServedVersion> {
    const bytes = await readFile(path);
    const info = describeModel(decodeModel(bytes));
    const input = info.inputs[0];
    const logits = info.outputs.find((o) => o.name === 'logits') ?? info.outputs[0];
    if (!input || !logits) throw new Error('the model has no input or no output');
    const shape = input.shape.slice(1).join('×');
    if (info.inputs.length !== 1 || shape !== '1×28×28')
      throw new Error(
        `expected one input [N,1,28,28], found ${info.inputs.map((i) => `${i.name} [${i.shape.join(',')}]`).join(', ')}`,
      );
    const { session, provider } = await createSession(bytes, {
      device: this.options.device ?? 'cpu',
      threads: this.options.threads ?? 1,
      onNotice: (m) => this.log(m),
    });
    const served: ServedVersion = {
      name,
      version,
      path,
      provider,
      metadata: info.metadata,
      inputName: input.name,
      logitsName: logits.name,
      normalizesInput: !normalizationFolded(info.metadata),
      session,
      stamp,
      batcher: new Batcher(
        async (images, count) => {
          const out = await session.run({ [input.name]: new ort.Tensor('float32', images, [count, 1, 28, 28]) });
          return (out[logits.name] as ort.Tensor).data as Float32Array;
        },
        {
          maxBatch: this.options.maxBatch ?? 64,
          delayMs: this.options.batchDelayMs ?? 2,
          onBatch: (size) => this.options.onBatch?.(name, size),
        },
      ),
    };
    // One warm-up run, so the first request doesn't pay for ORT's lazy initialization.
    await served.batcher.infer(new Float32Array(784), 1);
    return served;
  }

  /** Rescan every `intervalMs` (polling: portable, and catches files copied in place). */
  watch(intervalMs = 1000): void {
    this.timer ??= setInterval(() => void this.scan(), intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.scanning;
    for (const served of this.loaded.values()) await served.session.release();
    this.loaded.clear();
  }

  /** Names of models with at least one file, in order. */
  names(): string[] {
    return [...new Set([...this.loaded.values(), ...this.failed.values()].map((m) => m.name))].sort();
  }

  versions(name: string): { version: number; ready: boolean; served?: ServedVersion; failure?: FailedVersion }[] {
    const versions = new Map<
      number,
      { version: number; ready: boolean; served?: ServedVersion; failure?: FailedVersion }
    >();
    for (const f of this.failed.values())
      if (f.name === name) versions.set(f.version, { version: f.version, ready: false, failure: f });
    for (const s of this.loaded.values()) {
      if (s.name === name)
        versions.set(s.version, { ...versions.get(s.version), version: s.version, ready: true, served: s });
    }
    return [...versions.values()].sort((a, b) => a.version - b.version);
  }

  /** The served version: `version`, or the newest loaded one; the first model by name when none is given. */
  get(name?: string, version?: number): ServedVersion {
    const model = name ?? this.names().find((n) => this.versions(n).some((v) => v.ready));
    if (!model) throw new ModelNotFoundError('no model is loaded');
    const versions = this.versions(model);
    if (versions.length === 0) throw new ModelNotFoundError(`unknown model '${model}'`);
    if (version === undefined) {
      const newest = versions.filter((v) => v.ready).at(-1)?.served;
      if (!newest) throw new ModelNotFoundError(`model '${model}' has no version that loaded`);
      return newest;
    }
    const entry = versions.find((v) => v.version === version);
    if (!entry) throw new ModelNotFoundError(`model '${model}' has no version ${version}`);
    if (!entry.served)
      throw new ModelNotFoundError(`model '${model}' version ${version} failed to load: ${entry.failure?.error}`);
    return entry.served;
  }

  get readyCount(): number {
    return this.loaded.size;
  }
}
