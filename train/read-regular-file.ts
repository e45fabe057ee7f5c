/**
 * Reading a file someone may have replaced with anything: only a regular file (links followed) of at
 * most `maxBytes` is read. A FIFO would block open() and read() forever and /dev/zero would fill the
 * memory, so the file is opened non-blocking and checked with fstat before a byte is read.
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/** Thrown for a path that exists but is no regular file, or is over the size cap; `message` is one line. */
export class UnreadableFileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path} is ${reason}`);
  }
}

const MiB = 1024 * 1024;

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'something else';
}

const size = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes} bytes`);

/**
 * The bytes of the regular file at `path`. Throws UnreadableFileError when it is something else or
 * larger than `maxBytes`; open errors (ENOENT, EACCES, …) come through as Node's errors.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnreadableFileError(path, `${kindOf(info)}, not a regular file`);
    if (info.size > maxBytes) throw new UnreadableFileError(path, `larger than ${size(maxBytes)}`);
    // Read what fstat promised and no more, even if the file grows meanwhile.
    const buffer = Buffer.alloc(info.size);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** The reason a read failed, for a one-line message: Node's error code or our own reason. */
export function readFailure(error: unknown): string {
  if (error instanceof UnreadableFileError) return error.reason;
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
