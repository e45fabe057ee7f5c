/**
 * Grad-CAM (Selvaraju et al., 2017) from the gradient model's two Conv outputs, for one image: each map's
 * weight is its gradient averaged over the map, the heat map is the ReLU of the weighted sum of maps,
 * upsampled to the input's size as PyTorch's `F.interpolate(mode='bilinear', align_corners=False)` does.
 */

/** [channels, height, width] of one image's maps. */
export type MapDims = readonly [number, number, number];

export interface GradCam {
  /** αₖ = mean over the map of dJ/dAₖ. */
  weights: Float32Array;
  /** ReLU(Σₖ αₖ·Aₖ) at the maps' resolution, row-major. */
  coarse: Float32Array;
}

export function gradCam(maps: ArrayLike<number>, grads: ArrayLike<number>, [k, h, w]: MapDims): GradCam {
  const area = h * w;
  const weights = new Float32Array(k);
  for (let c = 0; c < k; c++) {
    let sum = 0;
    for (let i = 0; i < area; i++) sum += grads[c * area + i] as number;
    weights[c] = sum / area;
  }
  const coarse = new Float32Array(area);
  for (let i = 0; i < area; i++) {
    let v = 0;
    for (let c = 0; c < k; c++) v += (weights[c] as number) * (maps[c * area + i] as number);
    coarse[i] = Math.max(0, v);
  }
  return { weights, coarse };
}

/** Bilinear resize with half-pixel centres, source coordinates clamped at 0 (PyTorch's align_corners=False). */
export function upsampleBilinear(
  src: ArrayLike<number>,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float32Array {
  const out = new Float32Array(outH * outW);
  const source = (o: number, scale: number, size: number) => {
    const s = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(s), size - 1);
    return { lo, hi: Math.min(lo + 1, size - 1), t: s - lo };
  };
  for (let y = 0; y < outH; y++) {
    const r = source(y, h / outH, h);
    for (let x = 0; x < outW; x++) {
      const c = source(x, w / outW, w);
      const at = (row: number, col: number) => src[row * w + col] as number;
      const top = at(r.lo, c.lo) * (1 - c.t) + at(r.lo, c.hi) * c.t;
      const bottom = at(r.hi, c.lo) * (1 - c.t) + at(r.hi, c.hi) * c.t;
      out[y * outW + x] = top * (1 - r.t) + bottom * r.t;
    }
  }
  return out;
}
