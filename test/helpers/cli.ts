/**
 * Run the project's CLIs: in this process through their exported `main` (no process start, no module load
 * per call), or as a script the way `npm run …` starts it (node + tsx), for what only a process shows.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { CliMain } from '../../node/cli/run-cli.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `main(args)` here, its output captured; no terminal, so no progress bar (what CI=1 did for a process). */
export async function runCli(main: CliMain, ...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    out: (text) => {
      stdout += text;
    },
    err: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

/** A run that must succeed: exit code 0 (its stderr in the failure message otherwise). */
export async function passingCli(main: CliMain, ...args: string[]): Promise<CliResult> {
  const result = await runCli(main, ...args);
  expect(result.code, result.stderr).toBe(0);
  return result;
}

/** A run that must fail the way our CLIs do: exit code 1; returns its stderr, trimmed. */
export async function failingCli(main: CliMain, ...args: string[]): Promise<string> {
  const { code, stderr } = await runCli(main, ...args);
  expect(code).toBe(1);
  return stderr.trim();
}

/** `script` with `args` in a child process (CI=1: no interactive output), whatever its exit code. */
export async function runScript(script: string, ...args: string[]): Promise<CliResult> {
  const child = promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { ...process.env, CI: '1' },
  });
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}
