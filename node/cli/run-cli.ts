/**
 * Shared CLI plumbing: a failure becomes one line on stderr and exit code 1, never a stack trace
 * (set DEBUG=1 to see the stack).
 */
import type { CliIo } from './io.ts';
import { CliExit } from './program.ts';

/** A CLI's entry: its arguments (after the script's name) in, its exit code out. */
export type CliMain = (argv: string[], io?: CliIo) => Promise<number>;

/** Runs a CLI's work and returns its exit code: 0, a CliExit's code, or 1 after an `error: …` line. */
export async function runCommand(io: CliIo, work: () => Promise<void> | void): Promise<number> {
  try {
    await work();
    return 0;
  } catch (error) {
    if (error instanceof CliExit) return error.code; // its output is written already
    const message = error instanceof Error ? error.message : String(error);
    io.err(`error: ${message}\n`);
    if (process.env.DEBUG && error instanceof Error) io.err(`${error.stack}\n`);
    return 1;
  }
}
