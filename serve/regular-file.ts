/**
 * Read a file the operator (or anyone who can write the model repository) put there, without trusting
 * what it is: a FIFO would block the read forever, a link to /dev/zero would never end, a huge file would
 * fill memory. The file is opened non-blocking (opening a FIFO returns at once), the *opened* descriptor is
 * checked to be a regular file under `maxBytes`, and the bytes are read through that same descriptor — a
 * swap of the path between the check and the read can't slip another file in.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Why a file was refused unread; `code` is short and path-free (it ends up in logs and metric labels). */
export class UnreadableFileError extends Error {
  override name = 'UnreadableFileError';
  constructor(
    readonly code: 'ENOTFILE' | 'EFBIG' | 'ECHANGED',
    message: string,
  ) {
    super(message);
  }
}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * The bytes of the regular file at `path` (following links), at most `maxBytes`; `known(stamp)` true skips
 * the read (the caller already holds those bytes) and gives `bytes` undefined. `stamp` is size and mtime, as
 * the repository's scan writes it. Errno errors (ENOENT, EACCES…) are thrown as they are; a FIFO, device or
 * folder throws ENOTFILE, a larger file EFBIG, a file that grew while being read ECHANGED.
 */
export async function readRegularFile(
  path: string,
  maxBytes: number,
  known: (stamp: string) => boolean = () => false,
): Promise<{ bytes?: Buffer; stamp: string }> {
  const handle = await open(path, FLAGS);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new UnreadableFileError('ENOTFILE', 'not a regular file');
    if (stat.size > maxBytes)
      throw new UnreadableFileError('EFBIG', `${stat.size} bytes; at most ${maxBytes} are read`);
    const stamp = `${stat.size}:${stat.mtimeMs}`;
    if (known(stamp)) return { stamp };
    // One byte more than the size, to see a file that grew since the stat.
    const bytes = Buffer.allocUnsafe(stat.size + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(bytes, length, bytes.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > stat.size) throw new UnreadableFileError('ECHANGED', 'grew while being read');
    }
    return { bytes: bytes.subarray(0, length), stamp };
  } finally {
    await handle.close();
  }
}
