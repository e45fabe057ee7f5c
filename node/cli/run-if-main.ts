/** Runs a CLI's `main` when its file is the script node was started with, not when a test imports it. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CliMain } from './run-cli.ts';

/** Whether `moduleUrl` (import.meta.url) is process.argv[1], through symlinks. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false; // e.g. a bundle's URL that is no file
  }
}

/** `main(process.argv.slice(2))` with the process's streams; its result becomes the exit code. */
export function runIfMain(moduleUrl: string, main: CliMain): void {
  if (!isMain(moduleUrl)) return;
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
