/** A labelled 2-D scatter on a canvas: points fitted to the canvas, one colour per digit, nearest-point lookup. */

/** Ten distinguishable colours (Tableau 10), one per digit. */
export const DIGIT_COLOURS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/** Data coordinates → canvas pixels, keeping the aspect ratio, with a margin. */
export interface Frame {
  toCanvas(x: number, y: number): [number, number];
}

export function frameOf(points: ArrayLike<number>, width: number, height: number, margin = 12): Frame {
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < points.length; i += 2) {
    const [x, y] = [points[i] as number, points[i + 1] as number];
    [minX, maxX, minY, maxY] = [Math.min(minX, x), Math.max(maxX, x), Math.min(minY, y), Math.max(maxY, y)];
  }
  const scale = Math.min((width - 2 * margin) / (maxX - minX || 1), (height - 2 * margin) / (maxY - minY || 1));
  const [ox, oy] = [(width - scale * (maxX - minX)) / 2, (height - scale * (maxY - minY)) / 2];
  return { toCanvas: (x, y) => [ox + (x - minX) * scale, oy + (y - minY) * scale] };
}

export function drawScatter(
  ctx: CanvasRenderingContext2D,
  points: ArrayLike<number>,
  labels: ArrayLike<number>,
  frame: Frame,
  radius: number,
): void {
  ctx.globalAlpha = 0.8;
  for (let i = 0; i < labels.length; i++) {
    const [x, y] = frame.toCanvas(points[2 * i] as number, points[2 * i + 1] as number);
    ctx.fillStyle = DIGIT_COLOURS[labels[i] as number] as string;
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

/** The point nearest canvas position (px, py) within `reach` pixels, or -1. */
export function nearest(points: ArrayLike<number>, frame: Frame, px: number, py: number, reach: number): number {
  let [best, bestD] = [-1, reach * reach];
  for (let i = 0; i < points.length / 2; i++) {
    const [x, y] = frame.toCanvas(points[2 * i] as number, points[2 * i + 1] as number);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d < bestD) [best, bestD] = [i, d];
  }
  return best;
}
