/**
 * PNG and JPEG decoding with a pixel cap checked before decompression (a small file can claim an
 * enormous image). Pure JS decoders (pngjs, jpeg-js): nothing native to install.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** 4 megapixels: far beyond any digit drawing, small enough to decode safely. */
export const MAX_PIXELS = 4_000_000;

export class ImageError extends Error {
  override name = 'ImageError';
  constructor(
    message: string,
    readonly code: 'undecodable_image' | 'image_too_large' | 'unsupported_media_type',
  ) {
    super(message);
  }
}

export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffImageType(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

function checkSize(width: number, height: number): void {
  if (width * height > MAX_PIXELS) {
    throw new ImageError(
      `image is ${width}×${height}; at most ${MAX_PIXELS.toLocaleString('en-US')} pixels are accepted`,
      'image_too_large',
    );
  }
  if (width === 0 || height === 0) throw new ImageError('image has no pixels', 'undecodable_image');
}

export function decodeImage(bytes: Uint8Array): DecodedImage {
  const type = sniffImageType(bytes);
  if (!type) throw new ImageError('not a PNG or JPEG image', 'unsupported_media_type');
  try {
    if (type === 'png') {
      if (bytes.length < 24) throw new ImageError('truncated PNG', 'undecodable_image');
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      checkSize(view.getUint32(16), view.getUint32(20)); // IHDR, before any inflating
      const png = PNG.sync.read(Buffer.from(bytes));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
    }
    const image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_PIXELS / 1e6,
      maxMemoryUsageInMB: 128,
    });
    checkSize(image.width, image.height);
    return { width: image.width, height: image.height, rgba: image.data };
  } catch (error) {
    if (error instanceof ImageError) throw error;
    const message = (error as Error).message;
    if (/maxResolutionInMP|maxMemoryUsage/.test(message))
      throw new ImageError(`image too large: ${message}`, 'image_too_large');
    throw new ImageError(`cannot decode the ${type.toUpperCase()} image: ${message}`, 'undecodable_image');
  }
}
