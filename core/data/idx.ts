/**
 * The IDX format of the MNIST files: a big-endian magic number (0x0000 0803 for unsigned-byte 3-D
 * images, 0x0000 0801 for 1-D labels), one big-endian uint32 per dimension, then the bytes.
 */
import { sizeOf } from '../../onnx/tensor.ts';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

/** Parse an unsigned-byte IDX file, checking its magic number, rank and size. */
export function parseIdx(bytes: Uint8Array, expectedRank: number, what: string): IdxArray {
  if (bytes.length < 4 + 4 * expectedRank)
    throw new Error(`${what}: file too short for an IDX header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const type = (magic >> 8) & 0xff;
  const rank = magic & 0xff;
  if (magic >>> 16 !== 0 || type !== UNSIGNED_BYTE || rank !== expectedRank) {
    const expected = (UNSIGNED_BYTE << 8) | expectedRank;
    throw new Error(
      `${what}: bad IDX magic number 0x${magic.toString(16).padStart(8, '0')} (expected 0x${expected.toString(16).padStart(8, '0')})`,
    );
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const header = 4 + 4 * rank;
  const size = sizeOf(dims);
  if (bytes.length !== header + size) {
    throw new Error(
      `${what}: expected ${header + size} bytes for dims [${dims.join(', ')}], file has ${bytes.length} (truncated or corrupt)`,
    );
  }
  return { dims, data: bytes.subarray(header) };
}
