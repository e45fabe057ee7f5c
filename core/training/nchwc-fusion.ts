/**
 * The forward pass's NCHWc convolutions (nchwc-convs.ts) with what ORT's inference optimizer would fuse
 * into them, had their weights been constant:
 *
 * - a ReLU that only reads the Conv's output runs inside the Conv (`activation`), so the ReorderOutput
 *   writes the ReLU's output under its name and the separate Relu node goes;
 * - a residual `Relu(Sum(a, Conv(x)))` becomes the Conv's `Sum` input (added before the activation) when
 *   `a` is already in the blocked layout for a Conv that reads it;
 * - a MaxPool of a reordered output runs on the blocked tensor (its NCHW result reordered out as before);
 * - a Conv that reads another NCHWc Conv's (reordered) output takes the blocked tensor itself instead of
 *   reordering it back: ReorderInput(ReorderOutput(y)) is y (padded channels are zero either way);
 * - reorders whose output nothing reads any more go.
 *
 * Values the backward pass reads keep their names and NCHW layout: only tensors nothing else reads are
 * removed. `keep` names values that become graph outputs after this pass runs.
 */
import { int, str, toAttributeProto } from '../../onnx/attributes.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import type { NodeProto } from '../../onnx/schema.ts';
import { isNchwcOp, NCHWC_DOMAIN } from './nchwc-convs.ts';

/** Fuse in place; returns how many nodes went. */
export function fuseNchwcConvs(g: GraphBuilder, keep: ReadonlySet<string>): number {
  const before = g.nodes.length;
  // Names something outside the nodes reads: the graph's outputs now and those `keep` says come later.
  const kept = new Set([...keep, ...g.outputs.map((o) => o.name)]);
  fuseActivations(g, kept);
  poolBlocked(g);
  skipRoundTrips(g, kept);
  dropUnread(g, kept);
  return before - g.nodes.length;
}

/** NCHWc reorders whose output nothing reads any more (a residual's NCHW form, once the Conv takes it blocked). */
function dropUnread(g: GraphBuilder, keep: ReadonlySet<string>): void {
  for (;;) {
    const { readers } = index(g);
    const unread = (value: string) => !readers.has(value) && !keep.has(value);
    const reorder = (n: NodeProto) => isNchwcOp(n, 'ReorderInput') || isNchwcOp(n, 'ReorderOutput');
    const dead = new Set(g.nodes.filter((n) => reorder(n) && n.output.every(unread)));
    if (dead.size === 0) return;
    removeNodes(g, dead);
  }
}

/** How many nodes read each value, and which node makes it. */
function index(g: GraphBuilder) {
  const readers = new Map<string, NodeProto[]>();
  const producer = new Map<string, NodeProto>();
  for (const node of g.nodes) {
    for (const input of node.input) if (input) readers.set(input, [...(readers.get(input) ?? []), node]);
    for (const output of node.output) producer.set(output, node);
  }
  return { readers, producer };
}

/** Read by `node` alone (so `node` may swallow it), and not a graph output now or later (`keep`). */
function readOnlyBy(value: string, node: NodeProto, readers: Map<string, NodeProto[]>, keep: ReadonlySet<string>) {
  const r = readers.get(value) ?? [];
  return r.length === 1 && r[0] === node && !keep.has(value);
}

function fuseActivations(g: GraphBuilder, keep: ReadonlySet<string>): void {
  const { readers, producer } = index(g);
  const blocked = new Map<string, string>(); // NCHW value → its ReorderInput output
  for (const node of g.nodes)
    if (isNchwcOp(node, 'ReorderInput')) blocked.set(node.input[0] as string, node.output[0] as string);
  const dropped = new Set<NodeProto>();
  for (const conv of g.nodes) {
    if (!isNchwcOp(conv, 'Conv') || conv.attribute?.some((a) => a.name === 'activation')) continue;
    const y = conv.output[0] as string;
    const reorder = readers.get(y)?.[0];
    if (!reorder || !isNchwcOp(reorder, 'ReorderOutput') || !readOnlyBy(y, reorder, readers, keep)) continue;
    const c = reorder.output[0] as string;
    let next = readers.get(c)?.[0];
    if (!next || !readOnlyBy(c, next, readers, keep)) continue;
    // Relu(Sum(a, c)): the residual goes into the Conv as its Sum input, in the blocked layout.
    let residual: string | undefined;
    if (next.op_type === 'Sum' && next.input.length === 2 && !next.domain) {
      const a = next.input[0] === c ? next.input[1] : next.input[0];
      const s = next.output[0] as string;
      const relu = readers.get(s)?.[0];
      const aBlocked = a === undefined ? undefined : blockedFormOf(a, producer, blocked);
      if (!aBlocked || !relu || relu.op_type !== 'Relu' || relu.domain || !readOnlyBy(s, relu, readers, keep)) continue;
      if (!producedBefore(g, aBlocked, conv, producer)) continue;
      dropped.add(next);
      residual = aBlocked;
      next = relu;
    }
    if (next.op_type !== 'Relu' || next.domain) continue;
    conv.attribute = [...(conv.attribute ?? []), toAttributeProto('activation', str('Relu'))];
    if (residual) conv.input = [conv.input[0] as string, conv.input[1] as string, conv.input[2] ?? '', residual];
    reorder.output = [next.output[0] as string];
    dropped.add(next);
  }
  removeNodes(g, dropped);
}

/** The blocked (NCHWc) form of `value` the graph already has: its ReorderInput's output, or the Conv output it was reordered from. */
function blockedFormOf(
  value: string,
  producer: Map<string, NodeProto>,
  blocked: Map<string, string>,
): string | undefined {
  const made = producer.get(value);
  if (made && isNchwcOp(made, 'ReorderOutput')) return made.input[0];
  return blocked.get(value);
}

function producedBefore(g: GraphBuilder, value: string, node: NodeProto, producer: Map<string, NodeProto>): boolean {
  const made = producer.get(value);
  if (!made) return g.inputs.some((i) => i.name === value);
  return g.nodes.indexOf(made) < g.nodes.indexOf(node);
}

/** NchwcMaxPool's attributes (ORT's contrib schema); a MaxPool with any other stays as it is. */
const POOL_ATTRIBUTES = new Set(['kernel_shape', 'pads', 'strides', 'dilations', 'ceil_mode']);

/**
 * MaxPool(ReorderOutput(y)) → ReorderOutput(NchwcMaxPool(y)): the pool reads the blocked tensor, and a
 * Conv after it can then read the pool's blocked output (skipRoundTrips).
 */
function poolBlocked(g: GraphBuilder): void {
  const { producer } = index(g);
  for (let i = 0; i < g.nodes.length; i++) {
    const pool = g.nodes[i] as NodeProto;
    if (pool.op_type !== 'MaxPool' || pool.domain || pool.output.length !== 1) continue;
    if (!pool.attribute?.every((a) => POOL_ATTRIBUTES.has(a.name))) continue;
    const made = producer.get(pool.input[0] as string);
    if (!made || !isNchwcOp(made, 'ReorderOutput')) continue;
    const channels = made.attribute?.find((a) => a.name === 'channels')?.i;
    if (channels === undefined) continue;
    const blockedOut = g.uniqueName(`${pool.output[0]}_nchwc`);
    const blockedPool: NodeProto = {
      ...pool,
      name: g.uniqueName(`${pool.name}_nchwc`),
      domain: NCHWC_DOMAIN,
      input: [made.input[0] as string],
      output: [blockedOut],
    };
    const reorder: NodeProto = {
      op_type: 'ReorderOutput',
      domain: NCHWC_DOMAIN,
      name: g.uniqueName(`${pool.name}_reorder`),
      input: [blockedOut],
      output: [pool.output[0] as string],
      attribute: [toAttributeProto('channels', int(Number(channels)))],
    };
    g.nodes.splice(i, 1, blockedPool, reorder);
    i++;
  }
}

/** ReorderInput(ReorderOutput(y)) → y for every reader of the ReorderInput. */
function skipRoundTrips(g: GraphBuilder, keep: ReadonlySet<string>): void {
  const { producer } = index(g);
  const replaced = new Map<string, string>();
  const dropped = new Set<NodeProto>();
  for (const node of g.nodes) {
    if (!isNchwcOp(node, 'ReorderInput')) continue;
    const made = producer.get(node.input[0] as string);
    if (!made || !isNchwcOp(made, 'ReorderOutput') || keep.has(node.output[0] as string)) continue;
    replaced.set(node.output[0] as string, made.input[0] as string);
    dropped.add(node);
  }
  for (const node of g.nodes) node.input = node.input.map((i) => replaced.get(i) ?? i);
  removeNodes(g, dropped);
}

function removeNodes(g: GraphBuilder, dropped: ReadonlySet<NodeProto>): void {
  const kept = g.nodes.filter((n) => !dropped.has(n));
  g.nodes.splice(0, g.nodes.length, ...kept);
}
