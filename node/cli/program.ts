/**
 * A commander program for one run of a CLI's `main`: built per call (a Command keeps the option values of its
 * last parse, so one object cannot be parsed twice in a process), writing to `io`, and throwing instead of
 * calling process.exit, so that --help or a bad flag ends `main` with its exit code.
 */
import { Command } from 'commander';
import type { CliIo } from './io.ts';

/** Ends a run with `code`, what it had to say written already (commander's help or error line, or the CLI's own). */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export function newProgram(name: string, io: CliIo): Command {
  return new Command(name)
    .exitOverride((error) => {
      throw new CliExit(error.exitCode);
    })
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) });
}
