/**
 * Forward convolutions of a training graph as ONNX Runtime's NCHWc convolutions (domain com.microsoft.nchwc,
 * CPU only: onnxruntime-node's sessions, never the browser's or a GPU's).
 *
 * ORT runs a Conv whose weights are constant in its blocked NCHWc layout (its optimizer reorders the
 * weights once), and one whose weights are a graph input — every Conv of a training step — through
 * im2col and a GEMM, 1.6–1.8× slower for the zoo's 16→16 and 16→32 convolutions (measured with batch 32,
 * one thread). The NCHWc kernel reads its weights at run time, so the graph can reorder them itself each
 * step (a Pad, Reshape and Transpose of a few thousand floats): the input goes in through ReorderInput (when
 * it has at least a block of channels), the output comes back through ReorderOutput under the Conv's own
 * output name, so the backward pass, which reads the Conv's inputs and output, is unchanged.
 *
 * Weight layouts, as ORT's NCHWc transformer writes them (B = the CPU's block size, 16 with AVX-512, 8
 * with AVX2; channels padded with zeros to a multiple of B): OIHWBiBo [M/B, C/B, kh, kw, Bi, Bo] for an
 * input of at least B channels, OIHWBo [M/B, C, kh, kw, Bo] below that (the input stays NCHW).
 */
import { type Attributes, int, ints } from '../../onnx/attributes.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import { attrInt, attrInts } from '../../onnx/read-attributes.ts';
import type { NodeProto } from '../../onnx/schema.ts';
import { int64Tensor } from '../../onnx/tensor.ts';
import { emitNative, NCHWC_FILTER } from '../autodiff/native-ops.ts';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/** Whether `node` is ORT's NCHWc `op` (Conv, ReorderInput, ReorderOutput, MaxPool). */
export const isNchwcOp = (node: NodeProto, op: string) => node.op_type === op && node.domain === NCHWC_DOMAIN;

const roundUp = (n: number, block: number) => Math.ceil(n / block) * block;

/** The Conv attributes NchwcConv takes as they are (auto_pad other than NOTSET is not rewritten). */
const KEPT = ['kernel_shape', 'pads', 'strides', 'dilations'];

/**
 * Rewrite, in place, each group-1 2-D Conv whose weight is one of `weights` (graph inputs: the trainable
 * parameters); returns how many. `block` is ORT's NCHWc block size on this CPU (node/nchwc.ts).
 * `nativeFilters`: reorder the weights with a native node (the graph is then cut into segments, whose
 * runner has it) instead of ORT's Pad, Reshape and Transpose.
 */
export function convsAsNchwc(
  g: GraphBuilder,
  block: number,
  weights: ReadonlySet<string>,
  nativeFilters = false,
): number {
  let rewritten = 0;
  for (let i = 0; i < g.nodes.length; i++) {
    const conv = g.nodes[i] as NodeProto;
    if (!eligible(g, conv, weights, block)) continue;
    const before = g.nodes.length;
    emitNchwcConv(g, conv, block, nativeFilters);
    const added = g.nodes.splice(before);
    // The last node (ReorderOutput) takes the Conv's own output name: everything downstream reads it unchanged.
    (added[added.length - 1] as NodeProto).output = [conv.output?.[0] as string];
    g.nodes.splice(i, 1, ...added);
    i += added.length - 1;
    rewritten++;
  }
  if (rewritten > 0) g.importDomain(NCHWC_DOMAIN, 1);
  return rewritten;
}

function eligible(g: GraphBuilder, node: NodeProto, weights: ReadonlySet<string>, block: number): boolean {
  if (node.op_type !== 'Conv' || (node.domain ?? '') !== '') return false;
  const [, w] = node.input as string[];
  if (!w || !weights.has(w)) return false;
  if (attrInt(node, 'group', 1) !== 1) return false;
  if (node.attribute?.some((a) => a.name === 'auto_pad')) return false; // our emitters write explicit pads
  const shape = g.shapes.get(w);
  if (shape?.length !== 4 || !shape.every((d) => typeof d === 'number' && d > 0)) return false;
  const channels = shape[1] as number;
  return channels < block || channels % 4 === 0; // ReorderInput takes channels in fours
}

/** The NCHWc nodes for `conv`, appended to the graph, ending with the ReorderOutput of its result. */
function emitNchwcConv(g: GraphBuilder, conv: NodeProto, block: number, nativeFilters: boolean): void {
  const [x, w, bias] = conv.input as [string, string, string | undefined];
  const [m, c, kh, kw] = g.shapes.get(w) as [number, number, number, number];
  const blocked = c >= block; // the input is reordered; else it stays NCHW and the weights are OIHWBo
  const [mp, cp] = nchwcFilterShape([m, c, kh, kw], block, blocked);
  const constant = (values: number[], hint: string) => g.constant(int64Tensor([values.length], values), hint);

  const reordered = nativeFilters
    ? emitNative(g, NCHWC_FILTER, [w], [mp, cp, kh, kw], { block: int(block), blocked: int(blocked ? 1 : 0) })
    : reorderInGraph();
  const paddedBias = bias && mp !== m ? g.op('Pad', [bias, constant([0, mp - m], 'nchwc_bias_pads')]) : bias;

  const input = blocked ? g.op('ReorderInput', [x], {}, { domain: NCHWC_DOMAIN }) : x;
  const attributes: Attributes = {};
  for (const name of KEPT) {
    const values = attrInts(conv, name, []);
    if (values.length > 0) attributes[name] = ints(values);
  }
  const inputs = paddedBias ? [input, reordered, paddedBias] : [input, reordered];
  const y = g.op('Conv', inputs, attributes, { domain: NCHWC_DOMAIN });
  g.op('ReorderOutput', [y], { channels: int(m) }, { domain: NCHWC_DOMAIN });

  function reorderInGraph(): string {
    const padded =
      mp === m && cp === c ? w : g.op('Pad', [w, constant([0, 0, 0, 0, mp - m, cp - c, 0, 0], 'nchwc_pads')]);
    const split = blocked ? [mp / block, block, cp / block, block, kh, kw] : [mp / block, block, c, kh, kw];
    const perm = blocked ? [0, 2, 4, 5, 3, 1] : [0, 2, 3, 4, 1];
    return g.op('Reshape', [
      g.op('Transpose', [g.op('Reshape', [padded, constant(split, 'nchwc_split')])], { perm: ints(perm) }),
      constant([mp, cp, kh, kw], 'nchwc_filter'),
    ]);
  }
}

/** The NCHWc filter's shape [mp, cp, kh, kw]: output channels padded to the block, input ones when `blocked`. */
export function nchwcFilterShape(
  [m, c, kh, kw]: readonly [number, number, number, number],
  block: number,
  blocked: boolean,
): [number, number, number, number] {
  return [roundUp(m, block), blocked ? roundUp(c, block) : c, kh, kw];
}

/**
 * Where each value of W [m, c, kh, kw] goes in ORT's NCHWc filter layout [mp, cp, kh, kw], the layout
 * `reorderInGraph` makes: OIHWBiBo [mp/B, cp/B, kh, kw, Bi, Bo] when `blocked`, else OIHWBo
 * [mp/B, c, kh, kw, Bo]. Entry j is the index in W of the output's value j, -1 for padding (zero).
 */
export function nchwcFilterMap(
  [m, c, kh, kw]: readonly [number, number, number, number],
  block: number,
  blocked: boolean,
): Int32Array {
  const [mp, cp] = nchwcFilterShape([m, c, kh, kw], block, blocked);
  const k = kh * kw;
  const inner = blocked ? block : 1;
  const map = new Int32Array(mp * cp * k);
  let at = 0;
  for (let ob = 0; ob < mp; ob += block)
    for (let ci = 0; ci < cp; ci += inner)
      for (let p = 0; p < k; p++)
        for (let i = ci; i < ci + inner; i++)
          for (let o = ob; o < ob + block; o++) map[at++] = o < m && i < c ? (o * c + i) * k + p : -1;
  return map;
}
