/**
 * Reading a file someone may have replaced with anything (a model repository, a run folder, a cache):
 * only a regular file (links followed) of at most `maxBytes` is read. A FIFO would block open() and
 * read() forever and /dev/zero would fill the memory, so the file is opened non-blocking (opening a FIFO
 * returns at once), the *opened* descriptor is checked with fstat, and the bytes are read through that
 * same descriptor — a swap of the path between the check and the read can't slip another file in.
 */
import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

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

/** `path` opened non-blocking, its descriptor checked to be a regular file of at most `maxBytes`. */
async function openRegular(path: string, maxBytes: number): Promise<{ handle: FileHandle; info: Stats }> {
  const handle = await open(path, FLAGS);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UnreadableFileError('ENOTFILE', `${kindOf(info)}, not a regular file`, path);
    if (info.size > maxBytes) throw new UnreadableFileError('EFBIG', `larger than ${size(maxBytes)}`, path);
    return { handle, info };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Everything `handle` holds into `into` — one byte more than the size is asked for, to see a file that grew
 * since the stat — at most `step` bytes a read, each piece handed to `piece`; with `reuse`, every read goes
 * to the start of `into` (a buffer smaller than the file). The count read.
 */
async function readAll(
  opened: { handle: FileHandle; info: Stats },
  path: string,
  into: Buffer,
  { step = Number.POSITIVE_INFINITY, reuse = false, piece = (_: Buffer) => {} } = {},
): Promise<number> {
  let length = 0;
  for (;;) {
    const at = reuse ? 0 : length;
    const { bytesRead } = await opened.handle.read(into, at, Math.min(step, into.length - at), null);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length > opened.info.size) throw new UnreadableFileError('ECHANGED', 'growing while being read', path);
    piece(into.subarray(at, at + bytesRead));
  }
  return length;
}

/**
 * What tells one state of a file from another without reading it: size and mtime, which `cp -p`, tar and
 * builds that fix mtimes carry over, so also the inode (another file, or a link now leading elsewhere) and
 * ctime (set by every write and rename, and no user can set it back): an outside attack swapped in files of
 * the same size and mtime and the old bytes were served for good.
 */
export function fileStamp(info: Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'dev' | 'ino'>): string {
  return `${info.size}:${info.mtimeMs}:${info.ctimeMs}:${info.dev}:${info.ino}`;
}

/** Whether two fileStamps differ at most in ctime: a chmod, a hard link or `touch -a`, no write, rename or other file. */
export function sameWrite(a: string, b: string): boolean {
  const drop = (stamp: string) =>
    stamp
      .split(':')
      .filter((_, i) => i !== 2)
      .join(':');
  return drop(a) === drop(b);
}

/**
 * The bytes of the regular file at `path`, its stamp (fileStamp, as the repository's scan writes it) and the
 * file it opened (device and inode: a caller that checked where `path` leads can tell whether that is the
 * file that was read); `known(stamp)` true skips the read (the caller already holds those bytes) and gives
 * no `bytes`. Errno errors (ENOENT, EACCES…) are thrown as Node's; the others as UnreadableFileError.
 */
export async function readRegularFileStamped(
  path: string,
  maxBytes: number,
  known: (stamp: string) => boolean = () => false,
): Promise<{ bytes?: Buffer; stamp: string; file: { dev: number; ino: number } }> {
  const opened = await openRegular(path, maxBytes);
  try {
    const stamp = fileStamp(opened.info);
    const file = { dev: opened.info.dev, ino: opened.info.ino };
    if (known(stamp)) return { stamp, file };
    const bytes = Buffer.allocUnsafe(opened.info.size + 1);
    return { bytes: bytes.subarray(0, await readAll(opened, path, bytes)), stamp, file };
  } finally {
    await opened.handle.close();
  }
}

/** The most a digesting read takes at once (see readRegularFileDigest). */
const PIECE = 4 * MiB;

/**
 * The SHA-256 of the regular file at `path` (the same checks as readRegularFileStamped), taken a 4 MiB read
 * at a time, so a large file never holds the event loop for its whole digest (a 512 MiB model hashed in one
 * call held every request ~0.3 s under an outside attack); with `keep`, its bytes too. Without, the file goes
 * through one 4 MiB buffer: whether a touched file still holds bytes already loaded is known without holding
 * the whole file (the attack's touched 500 MiB files left gigabytes of buffers behind).
 */
export async function readRegularFileDigest(
  path: string,
  maxBytes: number,
  keep: boolean,
): Promise<{ sha256: string; bytes?: Buffer }> {
  const opened = await openRegular(path, maxBytes);
  try {
    const hash = createHash('sha256');
    const piece = (bytes: Buffer) => {
      hash.update(bytes);
    };
    const into = Buffer.allocUnsafe(keep ? opened.info.size + 1 : Math.min(PIECE, opened.info.size + 1));
    const length = await readAll(opened, path, into, { step: PIECE, reuse: !keep, piece });
    return { sha256: hash.digest('hex'), bytes: keep ? into.subarray(0, length) : undefined };
  } finally {
    await opened.handle.close();
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
