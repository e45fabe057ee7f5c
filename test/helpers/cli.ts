/** Run the project's CLI scripts as `npm run …` does (node + tsx), in a child process. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';

const run = promisify(execFile);

/** stdout/stderr of `script` with `args`; rejects on a non-zero exit. CI=1: no interactive output. */
export const runScript = (script: string, ...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, CI: '1' } });

/** Run a script that must fail the way our CLIs do: exit code 1; returns its stderr, trimmed. */
export async function failingScript(script: string, ...args: string[]): Promise<string> {
  const error = (await runScript(script, ...args).then(
    () => undefined,
    (e) => e,
  )) as { code: number; stderr: string } | undefined;
  expect(error?.code).toBe(1);
  return error?.stderr.trim() ?? '';
}
