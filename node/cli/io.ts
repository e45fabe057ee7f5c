/**
 * Where a CLI's output goes: the process's streams when it runs as a script, strings when a test calls its
 * `main` in-process. Texts are written as they are (a line carries its own '\n'), as a stream takes them.
 */
export interface CliIo {
  /** Results and log lines (stdout). */
  out(text: string): void;
  /** Errors and notices (stderr). */
  err(text: string): void;
  /** The terminal a live progress bar may draw on; absent (a pipe, CI, a test): no bar. */
  terminal?: NodeJS.WriteStream;
}

/** stdout and stderr; a progress bar only on an interactive stderr outside CI. */
export function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    terminal: process.stderr.isTTY && !process.env.CI ? process.stderr : undefined,
  };
}

/** A `print(line)` for callbacks that take whole lines (console.log's shape). */
export const lines =
  (write: (text: string) => void) =>
  (line: string): void =>
    write(`${line}\n`);
