/**
 * Heat maps over a digit: a 28×28 image in grey with a signed map (saliency: red where brightening a
 * pixel raises the class's score, blue where it lowers it) or a non-negative one (Grad-CAM: yellow-red)
 * blended over it. One scale per map: its own largest magnitude.
 */
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../../core/contract.ts';

export type MapKind = 'signed' | 'positive';

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
};

/** RGBA of the image (grey, dimmed so colour shows) with `map` blended over it. */
export function heatRgba(
  image: ArrayLike<number>,
  map: ArrayLike<number>,
  kind: MapKind,
): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(IMAGE_PIXELS * 4);
  const scale = maxAbs(map) || 1;
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const grey = 110 * (image[i] as number);
    const v = (map[i] as number) / scale;
    const a = Math.min(1, Math.abs(v) * 1.2);
    const colour = kind === 'positive' ? [255, 220 * (1 - v) + 40, 30] : v >= 0 ? [255, 60, 40] : [40, 120, 255];
    rgba.set([...colour.map((c) => grey * (1 - a) + c * a), 255], i * 4);
  }
  return rgba;
}

/**
 * The map alone, to lay over another picture (the drawing): opacity grows with the square of the value,
 * so the map's faint floor does not veil the drawing.
 */
export function overlayRgba(map: ArrayLike<number>, kind: MapKind): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(IMAGE_PIXELS * 4);
  const scale = maxAbs(map) || 1;
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = (map[i] as number) / scale;
    const colour = kind === 'positive' ? [255, 220 * (1 - v) + 40, 30] : v >= 0 ? [255, 60, 40] : [40, 120, 255];
    rgba.set([...colour, 220 * Math.min(1, v * v * 1.5)], i * 4);
  }
  return rgba;
}

/** A 28×28 canvas of the map over the image (CSS scales it up, pixelated). */
export function drawHeat(
  canvas: HTMLCanvasElement,
  image: ArrayLike<number>,
  map: ArrayLike<number>,
  kind: MapKind,
): void {
  canvas.width = canvas.height = IMAGE_SIDE;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.putImageData(new ImageData(heatRgba(image, map, kind), IMAGE_SIDE, IMAGE_SIDE), 0, 0);
}

/** A signed difference (a perturbation): red up, blue down, black unchanged; `scale` is the largest change shown. */
export function drawDifference(canvas: HTMLCanvasElement, diff: ArrayLike<number>, scale: number): void {
  canvas.width = canvas.height = IMAGE_SIDE;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const rgba = new Uint8ClampedArray(IMAGE_PIXELS * 4);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = Math.max(-1, Math.min(1, (diff[i] as number) / (scale || 1)));
    rgba.set(v >= 0 ? [255 * v, 60 * v, 40 * v, 255] : [-40 * v, -120 * v, -255 * v, 255], i * 4);
  }
  ctx.putImageData(new ImageData(rgba, IMAGE_SIDE, IMAGE_SIDE), 0, 0);
}

/** A plain 28×28 grey image. */
export function drawImage(canvas: HTMLCanvasElement, image: ArrayLike<number>): void {
  canvas.width = canvas.height = IMAGE_SIDE;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const rgba = new Uint8ClampedArray(IMAGE_PIXELS * 4);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = 255 * (image[i] as number);
    rgba.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(new ImageData(rgba, IMAGE_SIDE, IMAGE_SIDE), 0, 0);
}
