/**
 * Which marks are the digit: connected components (8-connected) of the faint-ink mask that hold some
 * sure ink (hysteresis thresholding, as Canny does), then a choice among them — drop specks, drop marks
 * that run off the picture's edge (the paper's edge, a shadow, the desk) when there is ink away from the
 * edge, keep the biggest mark and the pieces near it (a 5's detached bar, a broken stroke).
 */
import type { InkLevels } from './threshold.ts';

/** One connected mark. */
interface Component {
  area: number;
  /** Pixels darker than the strong threshold. */
  strong: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  touchesBorder: boolean;
}

/** The digit's pixels and their bounding box. */
export interface DigitMask {
  mask: Uint8Array;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/** A speck is smaller than this fraction of the biggest mark. */
const SPECK = 0.01;
/** A piece joins the digit when it is at least this fraction of the main mark… */
const PIECE = 0.04;
/** …and within this fraction of the digit's size from it (smaller pieces: within NEAR_SMALL). */
const NEAR = 0.4;
const NEAR_SMALL = 0.1;
/** The least sure ink (px) a digit away from the edge can have. */
const MIN_DIGIT = 8;

function find(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i] as number] as number;
    i = parent[i] as number;
  }
  return i;
}

/** Join the sets of i and j (when j is ink). */
function union(parent: Int32Array, i: number, j: number): void {
  if ((parent[j] as number) < 0) return;
  const a = find(parent, i);
  const b = find(parent, j);
  if (a < b) parent[b] = a;
  else if (b < a) parent[a] = b;
}

/** Label the components of darkness > weak; one pass with union-find over the 4 earlier neighbours. */
function label(
  darkness: Float32Array,
  width: number,
  height: number,
  levels: InkLevels,
): { components: Map<number, Component>; labels: Int32Array } {
  const n = width * height;
  const parent = new Int32Array(n).fill(-1);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if ((darkness[i] as number) <= levels.weak) continue;
      parent[i] = i;
      if (x > 0) union(parent, i, i - 1);
      if (y > 0) {
        if (x > 0) union(parent, i, i - width - 1);
        union(parent, i, i - width);
        if (x < width - 1) union(parent, i, i - width + 1);
      }
    }
  const components = new Map<number, Component>();
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if ((parent[i] as number) < 0) continue;
      const root = find(parent, i);
      parent[i] = root;
      let c = components.get(root);
      if (!c) {
        c = { area: 0, strong: 0, minX: x, minY: y, maxX: x, maxY: y, touchesBorder: false };
        components.set(root, c);
      }
      c.area++;
      if ((darkness[i] as number) > levels.strong) c.strong++;
      if (x < c.minX) c.minX = x;
      if (x > c.maxX) c.maxX = x;
      if (y > c.maxY) c.maxY = y; // rows come in order: minY is the first
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) c.touchesBorder = true;
    }
  return { components, labels: parent };
}

/** The gap between two boxes (0 when they overlap). */
function gap(a: Component | DigitMask, b: Component): number {
  const dx = Math.max(0, b.minX - a.maxX, a.minX - b.maxX);
  const dy = Math.max(0, b.minY - a.maxY, a.minY - b.maxY);
  return Math.max(dx, dy);
}

/** The digit's mask, or undefined when there is no mark with sure ink. */
export function digitMask(
  darkness: Float32Array,
  width: number,
  height: number,
  levels: InkLevels,
): DigitMask | undefined {
  const { components, labels } = label(darkness, width, height, levels);
  let marks = [...components.entries()].filter(([, c]) => c.strong > 0);
  // Folds, not Math.max(...marks): a noisy photo can have more marks than a call has room for arguments.
  const biggest = marks.reduce((most, [, c]) => Math.max(most, c.strong), 0);
  marks = marks.filter(([, c]) => c.strong >= SPECK * biggest);
  // A mark off the edge goes when ink away from the edge can be the digit: ink as big as a third of it,
  // or, when the mark runs along half a side or more (the desk, a shadow's edge), any ink bigger than specks.
  const biggestInside = marks.reduce((most, [, c]) => (c.touchesBorder ? most : Math.max(most, c.strong)), 0);
  const long = (c: Component) => c.maxX - c.minX + 1 >= width / 2 || c.maxY - c.minY + 1 >= height / 2;
  marks = marks.filter(
    ([, c]) =>
      !c.touchesBorder ||
      !(biggestInside >= 0.3 * c.strong || (long(c) && biggestInside >= Math.max(MIN_DIGIT, 2 * SPECK * biggest))),
  );
  marks.sort((a, b) => b[1].strong - a[1].strong);
  const main = marks[0];
  if (!main) return undefined;
  const kept = new Set([main[0]]);
  const box: DigitMask = { mask: new Uint8Array(0), ...main[1] };
  for (let grown = true; grown; ) {
    grown = false;
    for (const [root, c] of marks) {
      if (kept.has(root)) continue;
      const near = c.strong >= PIECE * main[1].strong ? NEAR : NEAR_SMALL;
      if (gap(box, c) > near * Math.max(box.maxX - box.minX + 1, box.maxY - box.minY + 1)) continue;
      kept.add(root);
      [box.minX, box.minY] = [Math.min(box.minX, c.minX), Math.min(box.minY, c.minY)];
      [box.maxX, box.maxY] = [Math.max(box.maxX, c.maxX), Math.max(box.maxY, c.maxY)];
      grown = true;
    }
  }
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) if ((labels[i] as number) >= 0 && kept.has(labels[i] as number)) mask[i] = 1;
  return { ...box, mask };
}
