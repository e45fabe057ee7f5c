/**
 * A PNG cut down to what its pixels need, before libvips sees it. Ancillary chunks can be compressed text
 * (zTXt, iTXt) or profiles (iCCP) that libpng inflates as metadata: a 1 MB PNG of 132 such chunks of 7.7 KB
 * each inflated to 2.9 GB in libvips (an outside attack; the pixel, side and scan limits never look at
 * them). Digits need none of it, so only the chunks that shape the pixels are kept — and eXIf, uncompressed,
 * for the orientation.
 */

/** Chunks that decide the pixels (and their orientation); everything else is dropped. */
const KEPT = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND', 'eXIf', 'gAMA', 'cHRM', 'sRGB', 'sBIT']);
const SIGNATURE_BYTES = 8;

/**
 * The PNG with only KEPT chunks (bytes copied as they are). A chunk cut short by the end of the file ends
 * the walk: kept (as it is) if it is image data, which libvips decodes as far as it goes, else dropped —
 * never the whole file passed through (an outside attack truncated the last chunk to get every text
 * chunk before it inflated).
 */
export function pixelChunksOnly(png: Uint8Array): Uint8Array {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const kept: [number, number][] = [];
  let at = SIGNATURE_BYTES;
  let dropped = false;
  while (at + 8 <= png.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const end = at + 12 + length; // length, type, data, CRC
    if (end > png.length) {
      if (type === 'IDAT') kept.push([at, png.length]);
      dropped = true;
      break;
    }
    if (KEPT.has(type)) kept.push([at, end]);
    else dropped = true;
    at = end;
    if (type === 'IEND') break;
  }
  if (!dropped) return png;
  const out = new Uint8Array(SIGNATURE_BYTES + kept.reduce((sum, [from, to]) => sum + to - from, 0));
  out.set(png.subarray(0, SIGNATURE_BYTES));
  let offset = SIGNATURE_BYTES;
  for (const [from, to] of kept) {
    out.set(png.subarray(from, to), offset);
    offset += to - from;
  }
  return out;
}
