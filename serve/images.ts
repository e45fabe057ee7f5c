/**
 * Image decoding within a budget, off the event loop: libvips through `sharp`, on libuv's thread pool.
 *
 * Why sharp (measured on this 2-core machine): a 15 KB 2000×2000 PNG decodes and shrinks in ~45 ms with
 * the event loop free (1.4 ms worst lag), where pngjs + jpeg-js blocked it for 0.4–1.0 s; a PNG whose second
 * IHDR claims 8000×8000×16-bit is refused in 2 ms ("corrupt header"); an interlaced PNG with 200 MB of
 * deflated zeros stops at the declared size (libpng reads no further). Its prebuilt binaries come as npm
 * packages, so nothing downloads at install time, and it reads PNG, JPEG, WebP and GIF (first frame).
 *
 * Bounds: the header, read first (`metadata()`, no pixel decoded): its pixel count, each side and the
 * aspect ratio — a decode's memory and CPU follow the longest side, not just the pixel count: a
 * 15,999,999×1 16-bit PNG (125 KB, under the pixel limit) took libvips to 2–4 GB and a 1×16,000,000 one
 * ~4 s of CPU. Then the decode: sequential (PNG rows stream through, never the whole image), the pixel
 * count enforced again by libvips (`limitInputPixels`), JPEG and WebP shrunk while they load, a CPU-time
 * cap per image, and images shrunk to fit `MAX_SIDE` before they reach JavaScript, so the digit
 * preprocessing never sees more than MAX_SIDE² pixels. At most `MAX_CONCURRENT` decodes run at once and
 * `MAX_QUEUED` wait; more is refused as busy (503), so a flood can't queue unbounded memory.
 *
 * One cost the pixel count does not bound: a progressive JPEG decodes every scan over the whole image, and
 * a 1 MB file can hold ~30,000 scans that each say almost nothing (measured: 4000×4000, 2.8 ms a scan, 90 s
 * a file; libjpeg never returns to libvips's timeout check, and a decode can't be cancelled once it runs).
 * Encoders write 1 (baseline) to ~12 scans, so more than `MAX_JPEG_SCANS` (fewer for images over 4 MP:
 * `SCAN_MEGAPIXELS`) is refused before decoding, as libjpeg-turbo's own tools do (djpeg -maxscans), and so is
 * arithmetic coding (refinement scans there cost far more; see `checkJpegCost`). A PNG is decoded from its
 * pixel chunks only (png-chunks.ts). One client address holds at most `MAX_PER_CLIENT` decode slots.
 */
import sharp from 'sharp';
import { pixelChunksOnly } from './png-chunks.ts';

/** 16 megapixels: a phone photo; larger headers are refused before decoding. */
export const MAX_PIXELS = 16_000_000;
/** Longest side a header may claim: a 16-megapixel photo's is 4608 (4:3) or 5333 (16:9); 8192×1953 decodes in 0.3 s, +90 MB. */
export const MAX_INPUT_SIDE = 8192;
/** Longer side over shorter: shrunk to 512, a 20:1 image keeps a short side of ~26 px, about a digit's 28. */
export const MAX_ASPECT_RATIO = 20;
/** Decoded images are shrunk (keeping the aspect ratio) to fit this side. */
export const MAX_SIDE = 512;
/** Scans (SOS markers) a JPEG may have: 100 scans of a 16-megapixel image decode in ~0.3 s here. */
export const MAX_JPEG_SCANS = 100;
const TIMEOUT_SECONDS = 5;
const MAX_CONCURRENT = 2;
const MAX_QUEUED = 32;
/** Decodes one client address may have running or queued: a flood from one address can't take every slot. */
const MAX_PER_CLIENT = 4;

// No libvips operation cache (memory grows with distinct inputs otherwise); one thread per image.
sharp.cache(false);
sharp.concurrency(1);

export type ImageErrorCode =
  | 'undecodable_image'
  | 'image_too_large'
  | 'extreme_aspect_ratio'
  | 'unsupported_media_type'
  | 'busy';

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

/**
 * How many start-of-scan markers (FF DA) a JPEG has. Entropy-coded data can't hide one (a coded FF is
 * followed by 00 or a restart marker), so counting the byte pair counts the scans — plus any in an embedded
 * thumbnail, which the limit's slack covers. Stops counting past `limit`.
 */
export function jpegScans(bytes: Uint8Array, limit = MAX_JPEG_SCANS): number {
  let scans = 0;
  for (let i = bytes.indexOf(0xff); i >= 0 && i + 1 < bytes.length && scans <= limit; i = bytes.indexOf(0xff, i + 1))
    if (bytes[i + 1] === 0xda) scans++;
  return scans;
}

/** Start-of-frame markers of the Huffman-coded JPEGs we read: baseline, extended, progressive. */
const HUFFMAN_FRAMES = new Set([0xc0, 0xc1, 0xc2]);
/** Other frames (lossless, hierarchical, arithmetic-coded) and DAC (arithmetic conditioning). */
const REFUSED_FRAMES = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf]);
/** Scans × megapixels a JPEG may ask for: 100 scans up to 4 MP, fewer above (25 at 16 MP; encoders write ≤ ~12). */
const SCAN_MEGAPIXELS = 400;

/**
 * Refuse, from its markers, a JPEG whose decode costs more than its pixels suggest: arithmetic coding
 * (~900 bytes of 70 refinement scans over 16 MP, 4 components, took 1.2–1.9 s; no browser reads it either),
 * lossless or hierarchical frames, or more scans than its size allows.
 */
function checkJpegCost(bytes: Uint8Array): void {
  let frame: { marker: number; megapixels: number } | undefined;
  // Marker segments up to the first scan, stepping over stray bytes between them as libjpeg does (it only
  // warns): an outside attack put one 00 before the frame marker to end a stricter walk early.
  for (let at = bytes.indexOf(0xff, 2); at >= 0 && at + 1 < bytes.length; ) {
    const marker = bytes[at + 1] as number;
    if (marker === 0xff || marker === 0x00) {
      at = bytes.indexOf(0xff, at + 1); // a fill byte, or FF 00 (no marker) before the first scan
      continue;
    }
    if (marker === 0xda) {
      if (!frame)
        throw new ImageError(
          'a JPEG whose first scan comes before any frame header read here',
          'unsupported_media_type',
        );
      break;
    }
    if (REFUSED_FRAMES.has(marker))
      throw new ImageError(
        'a lossless, hierarchical or arithmetic-coded JPEG (not read here)',
        'unsupported_media_type',
      );
    const standalone = marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9); // TEM, RSTn, SOI, EOI: no length
    const length =
      standalone || at + 4 > bytes.length ? 0 : ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    if (HUFFMAN_FRAMES.has(marker) && at + 9 <= bytes.length) {
      const height = ((bytes[at + 5] as number) << 8) | (bytes[at + 6] as number);
      const width = ((bytes[at + 7] as number) << 8) | (bytes[at + 8] as number);
      frame = { marker, megapixels: (width * height) / 1e6 };
    }
    at = bytes.indexOf(0xff, at + 2 + length);
  }
  const allowed = Math.min(
    MAX_JPEG_SCANS,
    Math.max(1, Math.floor(SCAN_MEGAPIXELS / Math.max(frame?.megapixels ?? 0, 1))),
  );
  if (jpegScans(bytes, allowed) > allowed)
    throw new ImageError(
      `a JPEG of more than ${allowed} scans (progressive passes) for its ${frame ? `${frame.megapixels.toFixed(1)} megapixels` : 'size'}`,
      'image_too_large',
    );
}

/** One page (a GIF's first frame), read top to bottom, refused past MAX_PIXELS by libvips too. */
const SHARP_OPTIONS = { limitInputPixels: MAX_PIXELS, failOn: 'error', pages: 1, sequentialRead: true } as const;

let running = 0;
const waiting: (() => void)[] = [];
const perClient = new Map<string, number>();

async function withSlot<T>(client: string, work: () => Promise<T>): Promise<T> {
  const mine = perClient.get(client) ?? 0;
  if (mine >= MAX_PER_CLIENT)
    throw new ImageError(`${MAX_PER_CLIENT} of your images are being decoded already; retry shortly`, 'busy');
  if (running >= MAX_CONCURRENT && waiting.length >= MAX_QUEUED)
    throw new ImageError('the server is busy decoding images; retry shortly', 'busy');
  perClient.set(client, mine + 1);
  try {
    if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  } finally {
    const left = (perClient.get(client) ?? 1) - 1;
    if (left > 0) perClient.set(client, left);
    else perClient.delete(client);
  }
}

const count = (n: number) => n.toLocaleString('en-US');
const TOO_MANY_PIXELS = `image too large: at most ${count(MAX_PIXELS)} pixels`;

/** Refuse a header's dimensions past the limits, naming the limit, before any pixel is decoded. */
function checkDimensions(width: number, height: number): void {
  const size = `image is ${count(width)}×${count(height)} pixels`;
  if (Math.max(width, height) > MAX_INPUT_SIDE)
    throw new ImageError(`${size}; each side at most ${count(MAX_INPUT_SIDE)} pixels`, 'image_too_large');
  if (width * height > MAX_PIXELS) throw new ImageError(`${TOO_MANY_PIXELS}; ${size}`, 'image_too_large');
  if (Math.max(width, height) > MAX_ASPECT_RATIO * Math.min(width, height))
    throw new ImageError(
      `${size}; the longer side may be at most ${MAX_ASPECT_RATIO} times the shorter`,
      'extreme_aspect_ratio',
    );
}

function classify(message: string): ImageError {
  if (/pixel limit|exceeds|too large|dimensions/i.test(message))
    return new ImageError(TOO_MANY_PIXELS, 'image_too_large');
  if (/timeout/i.test(message)) return new ImageError('image took too long to decode', 'image_too_large');
  // libvips messages are about the data, never about our files; keep the first line only.
  return new ImageError(`cannot decode the image: ${message.split('\n')[0]?.slice(0, 120)}`, 'undecodable_image');
}

/**
 * Decode a PNG, JPEG, WebP or GIF into RGBA, oriented by its EXIF tag and shrunk to fit MAX_SIDE. `client`
 * (the remote address) holds at most MAX_PER_CLIENT of the decode slots and queue.
 */
export async function decodeImage(file: Uint8Array, client = 'local'): Promise<DecodedImage> {
  const type = sniffImageType(file);
  if (!type) throw new ImageError('not a PNG, JPEG, WebP or GIF image', 'unsupported_media_type');
  const bytes = type === 'png' ? pixelChunksOnly(file) : file;
  if (type === 'jpeg') checkJpegCost(bytes);
  return withSlot(client, async () => {
    try {
      const header = await sharp(bytes, SHARP_OPTIONS).metadata();
      // No width: libvips found no image header; the decode below says why in its words.
      if (header.width !== undefined && header.height !== undefined) checkDimensions(header.width, header.height);
      // resize() lets libvips shrink JPEG and WebP while loading (fastShrinkOnLoad); the rotation runs after it.
      const { data, info } = await sharp(bytes, SHARP_OPTIONS)
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
      if (error instanceof ImageError) throw error;
      throw classify((error as Error).message ?? String(error));
    }
  });
}
