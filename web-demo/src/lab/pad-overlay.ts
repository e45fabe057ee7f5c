/**
 * A 28×28 map laid over the drawing pad. The model's input is the pad's ink cropped, scaled into 20×20
 * and centred by mass (core/digits), so the map is placed by matching the two ink bounding boxes: the
 * input's box lands on the pad's. (The stroke-width correction can move an edge by a pixel or two of
 * the 28; close enough to see where the model looked.)
 */
import { IMAGE_SIDE } from '../../../core/contract.ts';

export interface Box {
  x0: number;
  y0: number;
  /** Exclusive. */
  x1: number;
  y1: number;
}

/** The box around values above `threshold` in a width×height grid (undefined when none). */
export function inkBox(
  value: (i: number) => number,
  width: number,
  height: number,
  threshold: number,
): Box | undefined {
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if (value(y * width + x) > threshold) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
  return x1 < 0 ? undefined : { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}

/** Where to draw the whole 28×28 map on the pad so `input`'s box covers `pad`'s: [x, y, width, height]. */
export function placement(input: Box, pad: Box): [number, number, number, number] {
  const sx = (pad.x1 - pad.x0) / (input.x1 - input.x0);
  const sy = (pad.y1 - pad.y0) / (input.y1 - input.y0);
  return [pad.x0 - input.x0 * sx, pad.y0 - input.y0 * sy, IMAGE_SIDE * sx, IMAGE_SIDE * sy];
}
