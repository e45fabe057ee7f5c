/**
 * The model repository, as in Triton: `<root>/<name>/<version>/model.onnx`. Names are
 * `[a-z0-9][a-z0-9._-]*` (no path separators, no `..`), versions positive integers.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const MODEL_FILE = 'model.onnx';
const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** A version folder's name: a positive integer of at most 9 digits, no leading zero. */
export const VERSION_PATTERN = /^[1-9][0-9]{0,8}$/;

/** The longest valid model name. */
export const MAX_MODEL_NAME_LENGTH = 100;

export function isValidModelName(name: string): boolean {
  return NAME.test(name) && !name.includes('..') && name.length <= MAX_MODEL_NAME_LENGTH;
}

/** A model name from a client as messages show it: no longer than a valid one (a path segment can be 16 KB). */
export const shownName = (name: string) => name.slice(0, MAX_MODEL_NAME_LENGTH);

export function checkModelName(name: string): string {
  if (!isValidModelName(name)) {
    throw new Error(
      `invalid model name '${name}': use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function checkVersion(version: string | number): number {
  const text = String(version);
  if (!VERSION_PATTERN.test(text)) throw new Error(`invalid version '${text}': use a positive integer`);
  return Number(text);
}

/** Versions of `name` present in the repository, ascending. */
export function versionsOf(root: string, name: string): number[] {
  const dir = join(root, checkModelName(name));
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((v) => VERSION_PATTERN.test(v) && statSync(join(dir, v)).isDirectory())
    .map(Number)
    .sort((a, b) => a - b);
}

export function nextVersion(root: string, name: string): number {
  return (versionsOf(root, name).at(-1) ?? 0) + 1;
}

export function modelPath(root: string, name: string, version: number): string {
  return join(root, checkModelName(name), String(checkVersion(version)), MODEL_FILE);
}

export interface ModelFile {
  name: string;
  version: number;
  path: string;
}

/** Every `<name>/<version>/model.onnx` present under `root` (other entries are ignored). */
export function listModelFiles(root: string): ModelFile[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => isValidModelName(name) && statSync(join(root, name)).isDirectory())
    .flatMap((name) =>
      versionsOf(root, name)
        .map((version) => ({ name, version, path: join(root, name, String(version), MODEL_FILE) }))
        .filter((file) => existsSync(file.path)),
    );
}
