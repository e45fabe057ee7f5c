/** "Use a photo": decode an image file in the page and hand its pixels to the shared preprocessing. */

/** Photos are read at most this many pixels on their longer side (the preprocessing keeps 20×20 of it). */
const MAX_SIDE = 1024;

export interface Photo {
  bitmap: ImageBitmap;
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
}

/** Decode (EXIF orientation applied) and scale down a photo; throws when the browser can't decode it. */
export async function readPhoto(file: Blob): Promise<Photo> {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D canvas');
  ctx.drawImage(bitmap, 0, 0, width, height);
  return { bitmap, rgba: ctx.getImageData(0, 0, width, height).data, width, height };
}
