/**
 * A float64 reference evaluator for the ONNX ops our forward graphs use, written as plainly as
 * possible (nested loops, numpy broadcasting). It is the independent side of the gradient checks:
 * finite differences of its float64 loss judge the float32 gradients our training graph computes.
 * It evaluates only what the requested output needs.
 */
import { attrFloat, attrInt, attrInts } from '../../onnx/read-attributes.ts';
import type { ModelProto, NodeProto } from '../../onnx/schema.ts';
import { fromTensorProto } from '../../onnx/tensor.ts';

export interface F64 {
  shape: number[];
  data: Float64Array;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function broadcast(a: F64, b: F64, f: (x: number, y: number) => number): F64 {
  const rank = Math.max(a.shape.length, b.shape.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const [sa, sb] = [pad(a.shape), pad(b.shape)];
  const shape = sa.map((d, i) => Math.max(d, sb[i] as number));
  const out = new Float64Array(size(shape));
  if (a.data.length === out.length && b.data.length === out.length) {
    // Same shape: no index arithmetic (most of the models' elementwise nodes).
    for (let k = 0; k < out.length; k++) out[k] = f(a.data[k] as number, b.data[k] as number);
    return { shape, data: out };
  }
  const idx = new Array(rank).fill(0);
  const offset = (s: number[]) => s.reduce((o, d, i) => o * d + (d === 1 ? 0 : idx[i]), 0);
  for (let k = 0; k < out.length; k++) {
    let r = k;
    for (let i = rank - 1; i >= 0; i--) {
      idx[i] = r % (shape[i] as number);
      r = Math.floor(r / (shape[i] as number));
    }
    out[k] = f(a.data[offset(sa)] as number, b.data[offset(sb)] as number);
  }
  return { shape, data: out };
}

function conv(x: F64, w: F64, b: F64 | undefined, node: NodeProto): F64 {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, , kh, kw] = w.shape as [number, number, number, number];
  const [sh, sw] = attrInts(node, 'strides', [1, 1]) as [number, number];
  const [dh, dw] = attrInts(node, 'dilations', [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const ho = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(n * m * ho * wo);
  const X = x.data;
  // out[i,o,y,z] = b[o] + Σ_ch,p,q w[o,ch,p,q] · x[i, ch, y·sh + p·dh − pt, z·sw + q·dw − pl], summed in that
  // order. The taps are first laid out as rows of an im2col matrix (zero outside the image), so the sum runs
  // over whole output planes: long loops without bounds checks.
  const K = c * kh * kw;
  const P = ho * wo;
  const cols = new Float64Array(K * P);
  for (let i = 0; i < n; i++) {
    cols.fill(0);
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < kh; p++)
        for (let q = 0; q < kw; q++) {
          const k = (ch * kh + p) * kw + q;
          // The output columns whose input column ix = z·sw + q·dw − pl lies inside the image.
          const zFrom = Math.max(0, Math.ceil((pl - q * dw) / sw));
          const zTo = Math.min(wo, Math.floor((wd - 1 + pl - q * dw) / sw) + 1);
          for (let y = 0; y < ho; y++) {
            const iy = y * sh + p * dh - pt;
            if (iy < 0 || iy >= h) continue;
            const row = ((i * c + ch) * h + iy) * wd + q * dw - pl;
            const at = k * P + y * wo;
            for (let z = zFrom; z < zTo; z++) cols[at + z] = X[row + z * sw] as number;
          }
        }
    for (let o = 0; o < m; o++) {
      const plane = (i * m + o) * P;
      out.fill(b ? (b.data[o] as number) : 0, plane, plane + P);
      for (let k = 0; k < K; k++) {
        const weight = w.data[o * K + k] as number;
        const col = k * P;
        for (let j = 0; j < P; j++) out[plane + j] = (out[plane + j] as number) + weight * (cols[col + j] as number);
      }
    }
  }
  return { shape: [n, m, ho, wo], data: out };
}

function pool(x: F64, node: NodeProto, kind: 'max' | 'avg'): F64 {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [kh, kw] = attrInts(node, 'kernel_shape', []) as [number, number];
  const [sh, sw] = attrInts(node, 'strides', [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const includePad = attrInt(node, 'count_include_pad', 0) === 1;
  const ho = Math.floor((h + pt + pb - kh) / sh) + 1;
  const wo = Math.floor((w + pl + pr - kw) / sw) + 1;
  const out = new Float64Array(n * c * ho * wo);
  for (let i = 0; i < n * c; i++)
    for (let y = 0; y < ho; y++)
      for (let z = 0; z < wo; z++) {
        let acc = kind === 'max' ? -Infinity : 0;
        let count = 0;
        for (let p = 0; p < kh; p++)
          for (let q = 0; q < kw; q++) {
            const iy = y * sh + p - pt;
            const ix = z * sw + q - pl;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            const v = x.data[(i * h + iy) * w + ix] as number;
            acc = kind === 'max' ? Math.max(acc, v) : acc + v;
            count++;
          }
        out[(i * ho + y) * wo + z] = kind === 'max' ? acc : acc / (includePad ? kh * kw : count);
      }
  return { shape: [n, c, ho, wo], data: out };
}

function gemm(a: F64, b: F64, c: F64 | undefined, node: NodeProto): F64 {
  const ta = attrInt(node, 'transA', 0);
  const tb = attrInt(node, 'transB', 0);
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const [m, k] = (ta ? [a.shape[1], a.shape[0]] : a.shape) as [number, number];
  const n = (tb ? b.shape[0] : b.shape[1]) as number;
  const A = (i: number, j: number) => a.data[ta ? j * m + i : i * k + j] as number;
  const B = (i: number, j: number) => b.data[tb ? j * k + i : i * n + j] as number;
  let out: F64 = { shape: [m, n], data: new Float64Array(m * n) };
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += A(i, q) * B(q, j);
      out.data[i * n + j] = alpha * s;
    }
  if (c) out = broadcast(out, c, (x, y) => x + beta * y);
  return out;
}

/** 2-D MatMul: out[i,j] = Σ_q a[i,q]·b[q,j]. */
function matmul(a: F64, b: F64): F64 {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error('reference evaluator: MatMul of 2-D operands only');
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1] as number;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += (a.data[i * k + q] as number) * (b.data[q * n + j] as number);
      out[i * n + j] = s;
    }
  return { shape: [m, n], data: out };
}

function batchNorm(x: F64, scale: F64, bias: F64, mean: F64, variance: F64, node: NodeProto): F64 {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const training = attrInt(node, 'training_mode', 0) === 1;
  const out = new Float64Array(x.data.length);
  for (let ch = 0; ch < c; ch++) {
    let mu = mean.data[ch] as number;
    let v = variance.data[ch] as number;
    if (training) {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) for (let k = 0; k < h * w; k++) s += x.data[(i * c + ch) * h * w + k] as number;
      mu = s / (n * h * w);
      for (let i = 0; i < n; i++)
        for (let k = 0; k < h * w; k++) s2 += ((x.data[(i * c + ch) * h * w + k] as number) - mu) ** 2;
      v = s2 / (n * h * w);
    }
    for (let i = 0; i < n; i++)
      for (let k = 0; k < h * w; k++) {
        const j = (i * c + ch) * h * w + k;
        out[j] =
          (((x.data[j] as number) - mu) / Math.sqrt(v + eps)) * (scale.data[ch] as number) + (bias.data[ch] as number);
      }
  }
  return { shape: x.shape, data: out };
}

function concat(values: F64[], axis: number): F64 {
  const first = values[0] as F64;
  const outer = size(first.shape.slice(0, axis));
  const shape = [...first.shape];
  shape[axis] = values.reduce((s, v) => s + (v.shape[axis] as number), 0);
  const out = new Float64Array(size(shape));
  let o = 0;
  for (let i = 0; i < outer; i++)
    for (const v of values) {
      const chunk = v.data.length / outer;
      out.set(v.data.subarray(i * chunk, (i + 1) * chunk), o);
      o += chunk;
    }
  return { shape, data: out };
}

function reduceMean(x: F64, axes: number[], keepdims: boolean): F64 {
  const rank = x.shape.length;
  const reduced = new Set(axes.map((a) => (a + rank) % rank));
  const outShape = x.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const out = new Float64Array(size(outShape));
  const count = x.data.length / out.length;
  for (let k = 0; k < x.data.length; k++) {
    let r = k;
    let o = 0;
    let stride = 1;
    for (let i = rank - 1; i >= 0; i--) {
      const d = x.shape[i] as number;
      const idx = r % d;
      r = Math.floor(r / d);
      if (!reduced.has(i)) o += idx * stride;
      stride *= outShape[i] as number;
    }
    out[o] = (out[o] as number) + (x.data[k] as number) / count;
  }
  return { shape: keepdims ? outShape : x.shape.filter((_, i) => !reduced.has(i)), data: out };
}

/** Softmax along one axis (opset 13's definition), max-subtracted. */
function softmax(x: F64, axis: number): F64 {
  const a = (axis + x.shape.length) % x.shape.length;
  const n = x.shape[a] as number;
  const inner = size(x.shape.slice(a + 1));
  const outer = size(x.shape.slice(0, a));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * n + k) * inner + i;
      let max = -Infinity;
      for (let k = 0; k < n; k++) max = Math.max(max, x.data[at(k)] as number);
      let sum = 0;
      for (let k = 0; k < n; k++) sum += Math.exp((x.data[at(k)] as number) - max);
      for (let k = 0; k < n; k++) out[at(k)] = Math.exp((x.data[at(k)] as number) - max) / sum;
    }
  return { shape: x.shape, data: out };
}

function reshape(x: F64, target: F64): F64 {
  const dims = Array.from(target.data, (d, i) => (d === 0 ? (x.shape[i] as number) : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return { shape: dims.map((d) => (d === -1 ? x.data.length / known : d)), data: x.data };
}

function evalNode(node: NodeProto, ins: (F64 | undefined)[]): F64 {
  const [a, b, c, d, e] = ins;
  const x = a as F64;
  switch (node.op_type) {
    case 'Conv':
      return conv(x, b as F64, c, node);
    case 'Gemm':
      return gemm(x, b as F64, c, node);
    case 'MatMul':
      return matmul(x, b as F64);
    case 'Relu':
      return { shape: x.shape, data: x.data.map((v) => Math.max(v, 0)) };
    case 'MaxPool':
      return pool(x, node, 'max');
    case 'AveragePool':
      return pool(x, node, 'avg');
    case 'Add':
      return broadcast(x, b as F64, (p, q) => p + q);
    case 'Sub':
      return broadcast(x, b as F64, (p, q) => p - q);
    case 'Mul':
      return broadcast(x, b as F64, (p, q) => p * q);
    case 'Identity':
      return x;
    case 'Softmax':
      return softmax(x, attrInt(node, 'axis', -1));
    case 'Sum':
      return (ins as F64[]).reduce((s, v) => broadcast(s, v, (p, q) => p + q));
    case 'ReduceMean':
      return reduceMean(
        x,
        attrInts(
          node,
          'axes',
          x.shape.map((_, i) => i),
        ),
        attrInt(node, 'keepdims', 1) === 1,
      );
    case 'Reshape':
      return reshape(x, b as F64);
    case 'Flatten': {
      const axis = attrInt(node, 'axis', 1);
      return { shape: [size(x.shape.slice(0, axis)), size(x.shape.slice(axis))], data: x.data };
    }
    case 'Concat':
      return concat(ins as F64[], attrInt(node, 'axis', 0));
    case 'BatchNormalization':
      return batchNorm(x, b as F64, c as F64, d as F64, e as F64, node);
    default:
      throw new Error(`reference evaluator has no op ${node.op_type}`);
  }
}

export interface EvaluateOptions {
  /** Fill this map with every value computed (to reuse in later evaluations). */
  cache?: Map<string, F64>;
  /** Values from an earlier evaluation, reused for everything that does not depend on `changed`. */
  reuse?: Map<string, F64>;
  changed?: string;
}

/** Evaluate `output` of a model in float64, with the given inputs (parameters included). */
export function evaluate(
  model: ModelProto,
  feeds: Map<string, F64>,
  output: string,
  options: EvaluateOptions = {},
): F64 {
  const graph = model.graph ?? {};
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) for (const o of node.output) producer.set(o, node);
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const cache = options.cache ?? new Map<string, F64>();
  const dirty = new Set<string>(options.changed ? [options.changed] : []);
  for (const node of graph.node ?? []) {
    if (node.input.some((i) => dirty.has(i))) for (const o of node.output) dirty.add(o);
  }
  const value = (name: string): F64 => {
    const known = cache.get(name) ?? feeds.get(name) ?? (dirty.has(name) ? undefined : options.reuse?.get(name));
    if (known) return known;
    const init = initializers.get(name);
    if (init) {
      const t = fromTensorProto(init);
      // The typed-array constructor converts natively; Float64Array.from(…, Number) made this most of the time.
      const data = t.data instanceof BigInt64Array ? Float64Array.from(t.data, Number) : new Float64Array(t.data);
      const v = { shape: t.dims, data };
      cache.set(name, v);
      return v;
    }
    const node = producer.get(name);
    if (!node) throw new Error(`reference evaluator: no value '${name}'`);
    const result = evalNode(
      node,
      node.input.map((i) => (i === '' ? undefined : value(i))),
    );
    cache.set(name, result);
    return result;
  };
  return value(output);
}

/** Mean softmax cross-entropy with label smoothing, in float64. */
export function crossEntropy(logits: F64, labels: number[], labelSmoothing = 0): number {
  const [n, k] = logits.shape as [number, number];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.data.subarray(i * k, (i + 1) * k);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
    for (let j = 0; j < k; j++) {
      const q = (j === labels[i] ? 1 - labelSmoothing : 0) + labelSmoothing / k;
      total -= q * ((row[j] as number) - logSum);
    }
  }
  return total / n;
}
