/**
 * Photo-like pictures of MNIST test digits, for testing the preprocessing on what users send: a digit
 * written on paper (grey or tinted, 200–250), photographed under uneven light (a gradient, a vignette,
 * a shadow), with sensor noise, lens blur and JPEG compression, at 240–1000 px, anywhere in the frame,
 * with thin or thick pens, sometimes light chalk on a dark board or with the desk showing past the
 * paper's edge. Seeded: the same seed gives the same pictures.
 */
import jpeg from 'jpeg-js';
import { IMAGE_SIDE } from '../core/contract.ts';
import { morph } from '../core/digits/morphology.ts';
import { Rng } from '../core/random.ts';

/** How one picture is taken. All tones are 0..255 RGB. */
export interface PhotoOptions {
  width: number;
  height: number;
  /** Height in pixels of the digit's 28×28 MNIST frame (the ink itself is about 20/28 of it). */
  frame: number;
  /** Top-left corner of the digit's frame. */
  left: number;
  top: number;
  paper: [number, number, number];
  ink: [number, number, number];
  /** Pen width change in MNIST pixels: negative thins the stroke, positive thickens it. */
  pen: number;
  /** Light falling off linearly across the picture: strength 0..1 and direction in radians. */
  gradient: { strength: number; angle: number };
  /** Light falling off towards the corners, 0..1. */
  vignette: number;
  /** A soft shadow over part of the picture: depth 0..1 (0: none). */
  shadow: { depth: number; angle: number; offset: number };
  /** The desk seen past the paper's edge: how far in from one side (fraction of the picture; 0: none). */
  desk: { fraction: number; side: number; tone: [number, number, number] };
  /** Gaussian blur sigma in pixels. */
  blur: number;
  /** Gaussian sensor noise sigma, 0..255 units. */
  noise: number;
  /** JPEG quality 1..100, or 0 for a lossless picture. */
  jpegQuality: number;
}

/** The conditions the tests report on: one factor varied at a time over a plain photo, and all at once. */
export const PHOTO_CONDITIONS = [
  'white-paper',
  'grey-paper',
  'gradient',
  'vignette',
  'shadow',
  'noise',
  'blur',
  'jpeg',
  'light-on-dark',
  'thin-pen',
  'thick-pen',
  'small-digit',
  'large-photo',
  'desk-edge',
  'mixed',
] as const;
export type PhotoCondition = (typeof PHOTO_CONDITIONS)[number];

const grey = (v: number): [number, number, number] => [v, v, v];

/** A plain photo: grey paper, dark ink, mild noise, some blur, the digit anywhere with a margin. */
function plain(rng: Rng, size = rng.uniform(240, 440)): PhotoOptions {
  const width = Math.round(size * rng.uniform(0.8, 1.25));
  const height = Math.round(size);
  const frame = Math.round(Math.min(width, height) * rng.uniform(0.45, 0.9));
  const paper = rng.uniform(215, 245);
  return {
    width,
    height,
    frame,
    left: Math.round(rng.uniform(0, width - frame)),
    top: Math.round(rng.uniform(0, height - frame)),
    paper: [paper + rng.uniform(-3, 6), paper, paper - rng.uniform(0, 10)],
    ink: grey(rng.uniform(20, 70)),
    pen: 0,
    gradient: { strength: 0, angle: 0 },
    vignette: 0,
    shadow: { depth: 0, angle: 0, offset: 0 },
    desk: { fraction: 0, side: 0, tone: grey(0) },
    blur: rng.uniform(0, 1),
    noise: rng.uniform(1, 4),
    jpegQuality: 0,
  };
}

/** Draw the options of one picture under `condition`, about `size` px high if given. */
export function sampleOptions(condition: PhotoCondition, rng: Rng, size?: number): PhotoOptions {
  const o = plain(rng, size ?? (condition === 'large-photo' ? rng.uniform(800, 1000) : undefined));
  const all = condition === 'mixed';
  const pick = (p: number) => all && rng.next() < p;
  if (condition === 'white-paper') {
    o.paper = grey(255);
    o.ink = grey(0);
    o.noise = 0;
    o.blur = 0;
  }
  if (condition === 'grey-paper' || all) {
    const paper = rng.uniform(200, 250);
    o.paper = [paper, paper - rng.uniform(0, 8), paper - rng.uniform(0, 20)];
    o.ink = condition === 'grey-paper' ? grey(rng.uniform(40, 140)) : o.ink;
  }
  if (condition === 'gradient' || pick(0.6)) o.gradient = { strength: rng.uniform(0.2, 0.5), angle: rng.uniform(0, 7) };
  if (condition === 'vignette' || pick(0.5)) o.vignette = rng.uniform(0.2, 0.5);
  if (condition === 'shadow' || pick(0.3))
    o.shadow = { depth: rng.uniform(0.25, 0.5), angle: rng.uniform(0, 7), offset: rng.uniform(-0.3, 0.3) };
  if (condition === 'noise' || pick(0.5)) o.noise = rng.uniform(6, 14);
  if (condition === 'blur' || pick(0.5)) o.blur = rng.uniform(1, 3);
  if (condition === 'jpeg' || pick(0.6)) o.jpegQuality = Math.round(rng.uniform(20, 80));
  if (condition === 'light-on-dark' || pick(0.2)) {
    o.paper = grey(rng.uniform(25, 80));
    o.ink = grey(rng.uniform(190, 240));
  }
  if (condition === 'thin-pen' || pick(0.25)) o.pen = -rng.uniform(0.3, 0.6);
  else if (condition === 'thick-pen' || pick(0.25)) o.pen = rng.uniform(0.7, 1.5);
  if (condition === 'small-digit' || pick(0.2)) {
    o.frame = Math.round(Math.min(o.width, o.height) * rng.uniform(0.2, 0.35));
    o.left = Math.round(rng.uniform(0, o.width - o.frame));
    o.top = Math.round(rng.uniform(0, o.height - o.frame));
  }
  if (condition === 'desk-edge' || pick(0.2)) {
    o.desk = { fraction: rng.uniform(0.04, 0.12), side: rng.int(4), tone: [rng.uniform(60, 130), 70, 50] };
    // Keep the digit's frame on the paper.
    const edge = Math.round(o.desk.fraction * (o.desk.side % 2 ? o.height : o.width));
    if (o.desk.side === 0) o.left = Math.max(o.left, edge);
    if (o.desk.side === 2) o.left = Math.min(o.left, o.width - o.frame - edge);
    if (o.desk.side === 1) o.top = Math.max(o.top, edge);
    if (o.desk.side === 3) o.top = Math.min(o.top, o.height - o.frame - edge);
  }
  return o;
}

/** Separable Gaussian blur of a w×h map (edges clamped). */
function blur(src: Float32Array, w: number, h: number, sigma: number): Float32Array {
  if (sigma < 0.3) return src;
  const r = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  const kernel = Float32Array.from(k, (v) => v / sum);
  const pass = (s: Float32Array, step: number, n: number, lines: number, lineStep: number) => {
    const out = new Float32Array(s.length);
    for (let line = 0; line < lines; line++)
      for (let x = 0; x < n; x++) {
        let acc = 0;
        for (let d = -r; d <= r; d++)
          acc +=
            (kernel[d + r] as number) * (s[line * lineStep + Math.min(n - 1, Math.max(0, x + d)) * step] as number);
        out[line * lineStep + x * step] = acc;
      }
    return out;
  };
  return pass(pass(src, 1, w, h, w), w, h, w, 1);
}

/** The ink's patch: where it lies in the picture and its coverage (0..1) there. */
interface InkPatch {
  x0: number;
  y0: number;
  w: number;
  h: number;
  ink: Float32Array;
}

/**
 * Ink coverage of the digit: MNIST's digit upsampled bilinearly into its frame (plus a margin for the
 * pen and the blur), its edge made crisper as a pen draws, thickened or thinned, then blurred.
 */
function inkPatch(digit: Uint8Array, o: PhotoOptions): InkPatch {
  const scale = o.frame / IMAGE_SIDE;
  const pad = Math.ceil(Math.abs(o.pen) * scale + 3 * o.blur) + 2;
  const [x0, y0] = [o.left - pad, o.top - pad];
  const [w, h] = [o.frame + 2 * pad, o.frame + 2 * pad];
  const ink = new Float32Array(w * h);
  const at = (x: number, y: number) =>
    x < 0 || y < 0 || x >= IMAGE_SIDE || y >= IMAGE_SIDE ? 0 : (digit[y * IMAGE_SIDE + x] as number) / 255;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const sx = (x - pad + 0.5) / scale - 0.5;
      const sy = (y - pad + 0.5) / scale - 0.5;
      const [ix, iy] = [Math.floor(sx), Math.floor(sy)];
      const [fx, fy] = [sx - ix, sy - iy];
      const v =
        (1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) +
        fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1));
      ink[y * w + x] = Math.min(1, Math.max(0, (v - 0.3) * 2.5));
    }
  return { x0, y0, w, h, ink: blur(morph({ width: w, height: h, data: ink }, o.pen * scale).data, w, h, o.blur) };
}

/** Illumination (0..1) at every pixel: gradient × vignette × shadow (the angles' sines and cosines taken once). */
function lighting(o: PhotoOptions): (x: number, y: number) => number {
  const { width: w, height: h } = o;
  const [gc, gs] = [Math.cos(o.gradient.angle), Math.sin(o.gradient.angle)];
  const [sc, ss] = [Math.cos(o.shadow.angle), Math.sin(o.shadow.angle)];
  return (x, y) => {
    const [u, v] = [x / w - 0.5, y / h - 0.5];
    const along = u * gc + v * gs; // −0.7..0.7
    let light = 1 - o.gradient.strength * (0.5 + along / 1.4);
    light *= 1 - o.vignette * 2 * (u * u + v * v);
    if (o.shadow.depth > 0) {
      const s = u * sc + v * ss - o.shadow.offset;
      light *= 1 - o.shadow.depth / (1 + Math.exp(-s * 30));
    }
    return light;
  };
}

function onDesk(o: PhotoOptions, x: number, y: number): boolean {
  const f = o.desk.fraction;
  if (f === 0) return false;
  const side = o.desk.side;
  return side === 0
    ? x < f * o.width
    : side === 1
      ? y < f * o.height
      : side === 2
        ? x >= (1 - f) * o.width
        : y >= (1 - f) * o.height;
}

/** A standard normal deviate (Box–Muller). */
function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/** Render MNIST digit `digit` (784 bytes, white on black) as an RGBA photo taken with options `o`. */
export function renderPhoto(digit: Uint8Array, o: PhotoOptions, rng: Rng): Uint8Array {
  const { width: w, height: h } = o;
  const patch = inkPatch(digit, o);
  const lightAt = lighting(o);
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [px, py] = [x - patch.x0, y - patch.y0];
      const ink = px >= 0 && py >= 0 && px < patch.w && py < patch.h ? (patch.ink[py * patch.w + px] as number) : 0;
      const desk = onDesk(o, x, y);
      const light = lightAt(x, y);
      const o4 = (y * w + x) * 4;
      for (let c = 0; c < 3; c++) {
        const surface = desk
          ? (o.desk.tone[c] as number)
          : (o.paper[c] as number) * (1 - ink) + (o.ink[c] as number) * ink;
        const v = surface * light + (o.noise > 0 ? o.noise * gaussian(rng) : 0);
        rgba[o4 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
      rgba[o4 + 3] = 255;
    }
  if (o.jpegQuality === 0) return rgba;
  const encoded = jpeg.encode({ data: rgba, width: w, height: h }, o.jpegQuality);
  return new Uint8Array(jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: true }).data);
}

/** One photo of a digit: its pixels, size, the options used. */
export interface DigitPhoto {
  rgba: Uint8Array;
  width: number;
  height: number;
  options: PhotoOptions;
}

/** A seeded photo of MNIST digit `digit` under `condition`, about `size` px high if given. */
export function photoOf(digit: Uint8Array, condition: PhotoCondition, seed: number, size?: number): DigitPhoto {
  const rng = new Rng(seed);
  const options = sampleOptions(condition, rng, size);
  return { rgba: renderPhoto(digit, options, rng), width: options.width, height: options.height, options };
}
