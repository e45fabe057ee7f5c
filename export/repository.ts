/**
 * The model repository, as in Triton: `<root>/<name>/<version>/model.onnx`. Names are
 * `[a-z0-9][a-z0-9._-]*` (no path separators, no `..`), versions positive integers.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const MODEL_FILE = 'model.onnx';
const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export function checkModelName(name: string): string {
  if (!NAME.test(name) || name.includes('..') || name.length > 100) {
    throw new Error(
      `invalid model name '${name}': use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function checkVersion(version: string | number): number {
  const text = String(version);
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new Error(`invalid version '${text}': use a positive integer`);
  return Number(text);
}

/** Versions of `name` present in the repository, ascending. */
export function versionsOf(root: string, name: string): number[] {
  const dir = join(root, checkModelName(name));
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((v) => /^[1-9][0-9]*$/.test(v) && statSync(join(dir, v)).isDirectory())
    .map(Number)
    .sort((a, b) => a - b);
}

export function nextVersion(root: string, name: string): number {
  return (versionsOf(root, name).at(-1) ?? 0) + 1;
}

export function modelPath(root: string, name: string, version: number): string {
  return join(root, checkModelName(name), String(checkVersion(version)), MODEL_FILE);
}
