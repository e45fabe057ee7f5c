/**
 * Image decoding within a budget, off the event loop: libvips through `sharp`, on libuv's thread pool.
 *
 * Why sharp (measured on this 2-core machine): a 15 KB 2000×2000 PNG decodes and shrinks in ~45 ms with
 * the event loop free (1.4 ms worst lag), where pngjs + jpeg-js blocked it for 0.4–1.0 s; a PNG whose second
 * IHDR claims 8000×8000×16-bit is refused in 2 ms ("corrupt header"); an interlaced PNG with 200 MB of
 * deflated zeros stops at the declared size (libpng reads no further). Its prebuilt binaries come as npm
 * packages, so nothing downloads at install time, and it reads PNG, JPEG, WebP and GIF (first frame).
 *
 * Bounds: the header's pixel count (`limitInputPixels`, checked before any decompression), a CPU-time
 * cap per image, and the decoded size: images are shrunk to fit `MAX_SIDE` before they reach JavaScript,
 * so the digit preprocessing never sees more than MAX_SIDE² pixels. At most `MAX_CONCURRENT` decodes run
 * at once and `MAX_QUEUED` wait; more is refused as busy (503), so a flood can't queue unbounded memory.
 */
import sharp from 'sharp';

/** 16 megapixels: a phone photo; larger headers are refused before decoding. */
export const MAX_PIXELS = 16_000_000;
/** Decoded images are shrunk (keeping the aspect ratio) to fit this side. */
export const MAX_SIDE = 512;
const TIMEOUT_SECONDS = 5;
const MAX_CONCURRENT = 2;
const MAX_QUEUED = 32;

// No libvips operation cache (memory grows with distinct inputs otherwise); one thread per image.
sharp.cache(false);
sharp.concurrency(1);

export type ImageErrorCode = 'undecodable_image' | 'image_too_large' | 'unsupported_media_type' | 'busy';

export class ImageError extends Error {
  override name = 'ImageError';
  constructor(
    message: string,
    readonly code: ImageErrorCode,
  ) {
    super(message);
  }
}

export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** The image formats we read, by their magic bytes. */
export function sniffImageType(bytes: Uint8Array): 'png' | 'jpeg' | 'webp' | 'gif' | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length < 12) return undefined;
  if (bytes[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'GIF8') return 'gif';
  return undefined;
}

let running = 0;
const waiting: (() => void)[] = [];

async function withSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) {
    if (waiting.length >= MAX_QUEUED) throw new ImageError('the server is busy decoding images; retry shortly', 'busy');
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running++;
  }
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function classify(message: string): ImageError {
  if (/pixel limit|exceeds|too large|dimensions/i.test(message))
    return new ImageError(`image too large: at most ${MAX_PIXELS.toLocaleString('en-US')} pixels`, 'image_too_large');
  if (/timeout/i.test(message)) return new ImageError('image took too long to decode', 'image_too_large');
  // libvips messages are about the data, never about our files; keep the first line only.
  return new ImageError(`cannot decode the image: ${message.split('\n')[0]?.slice(0, 120)}`, 'undecodable_image');
}

/** Decode a PNG, JPEG, WebP or GIF into RGBA, oriented by its EXIF tag and shrunk to fit MAX_SIDE. */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  if (!sniffImageType(bytes)) throw new ImageError('not a PNG, JPEG, WebP or GIF image', 'unsupported_media_type');
  return withSlot(async () => {
    try {
      const { data, info } = await sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'error', pages: 1 })
        .timeout({ seconds: TIMEOUT_SECONDS })
        .rotate()
        .resize(MAX_SIDE, MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
        .ensureAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`unexpected ${info.channels} channels`);
      return {
        width: info.width,
        height: info.height,
        rgba: new Uint8Array(data.buffer, data.byteOffset, data.length),
      };
    } catch (error) {
      throw classify((error as Error).message ?? String(error));
    }
  });
}
