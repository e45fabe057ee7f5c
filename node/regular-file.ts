/**
 * Reading a file someone may have replaced with anything (a model repository, a run folder, a cache):
 * only a regular file (links followed) of at most `maxBytes` is read. A FIFO would block open() and
 * read() forever and /dev/zero would fill the memory, so the file is opened non-blocking (opening a FIFO
 * returns at once), the *opened* descriptor is checked with fstat, and the bytes are read through that
 * same descriptor — a swap of the path between the check and the read can't slip another file in.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * A path that exists but is no regular file (ENOTFILE), is over the cap (EFBIG) or grew while being read
 * (ECHANGED). `code` is short and path-free (logs, metric labels); `message` is one line with the path.
 */
export class UnreadableFileError extends Error {
  override name = 'UnreadableFileError';
  constructor(
    readonly code: 'ENOTFILE' | 'EFBIG' | 'ECHANGED',
    readonly reason: string,
    readonly path: string,
  ) {
    super(`${path} is ${reason}`);
  }
}

const MiB = 1024 * 1024;
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

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
 * The bytes of the regular file at `path` and its stamp (size and mtime, as the repository's scan writes
 * it); `known(stamp)` true skips the read (the caller already holds those bytes) and gives no `bytes`.
 * Errno errors (ENOENT, EACCES…) are thrown as Node's; the others as UnreadableFileError.
 */
export async function readRegularFileStamped(
  path: string,
  maxBytes: number,
  known: (stamp: string) => boolean = () => false,
): Promise<{ bytes?: Buffer; stamp: string }> {
  const handle = await open(path, FLAGS);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnreadableFileError('ENOTFILE', `${kindOf(info)}, not a regular file`, path);
    if (info.size > maxBytes) throw new UnreadableFileError('EFBIG', `larger than ${size(maxBytes)}`, path);
    const stamp = `${info.size}:${info.mtimeMs}`;
    if (known(stamp)) return { stamp };
    // One byte more than the size, to see a file that grew since the stat.
    const bytes = Buffer.allocUnsafe(info.size + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(bytes, length, bytes.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > info.size) throw new UnreadableFileError('ECHANGED', 'growing while being read', path);
    }
    return { bytes: bytes.subarray(0, length), stamp };
  } finally {
    await handle.close();
  }
}

/**
 * The SHA-256 of the regular file at `path` (the same checks as readRegularFileStamped), read 4 MiB at a
 * time into one buffer: whether a touched file still holds the bytes already loaded is known without
 * holding the whole file (an outside attack's touched 500 MiB files left gigabytes of buffers behind).
 */
export async function hashRegularFile(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, FLAGS);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnreadableFileError('ENOTFILE', `${kindOf(info)}, not a regular file`, path);
    if (info.size > maxBytes) throw new UnreadableFileError('EFBIG', `larger than ${size(maxBytes)}`, path);
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(Math.min(4 * MiB, info.size + 1));
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > info.size) throw new UnreadableFileError('ECHANGED', 'growing while being read', path);
      hash.update(chunk.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** The bytes of the regular file at `path`, at most `maxBytes` (see readRegularFileStamped). */
export async function readRegularFile(path: string, maxBytes: number): Promise<Buffer> {
  return (await readRegularFileStamped(path, maxBytes)).bytes as Buffer;
}

/** The reason a read failed, for a one-line message: our own reason or Node's error code. */
export function readFailure(error: unknown): string {
  if (error instanceof UnreadableFileError) return error.reason;
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
