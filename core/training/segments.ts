/**
 * A gradient graph with native nodes (core/autodiff/native-ops.ts) cut into the steps that run it: ORT
 * graph segments with the native nodes between them. Pure graph building; node/ and train/ run the plan.
 *
 * Each ORT node goes into a segment: at the earliest its inputs allow (a value a native node makes is
 * there from the next segment on) and at the latest its first consumer needs — the latest, so that what
 * crosses a boundary is mostly the float activations and gradients it must be anyway, not masks, shapes
 * and indices made early and carried along. A native node runs right after the segment that completes
 * its inputs (several in a row when they feed each other), before the first when it reads graph inputs
 * only. What a segment makes and another step reads, or the graph outputs, is a segment output; every
 * value crosses a boundary once, whatever reads it later.
 * An Identity of a native node's value (a graph output's public name) is a native step too: an alias.
 */
import type { Dim } from '../../onnx/builder.ts';
import type { GraphProto, ModelProto, NodeProto, ValueInfoProto } from '../../onnx/schema.ts';
import { isNative } from '../autodiff/native-ops.ts';
import { elementTypes } from './element-types.ts';
import { isNchwcOp } from './nchwc-convs.ts';

export interface GraphSegment {
  kind: 'graph';
  model: ModelProto;
  /** The values it reads: graph inputs, earlier segments' outputs, native nodes' outputs. */
  inputs: string[];
  outputs: string[];
}

export interface NativeStep {
  kind: 'native';
  node: NodeProto;
}

export type SegmentStep = GraphSegment | NativeStep;

export interface SegmentPlan {
  steps: SegmentStep[];
  /** The whole graph's outputs, in order (each made by some step). */
  outputs: string[];
}

/** Cut `model` (from GraphBuilder.toModel) at its native nodes; `shapes` (GraphBuilder.shapes) declares crossings. */
export function splitAtNativeNodes(model: ModelProto, shapes: ReadonlyMap<string, Dim[]> = new Map()): SegmentPlan {
  const graph = model.graph ?? {};
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((node, k) => {
    for (const o of node.output) if (o !== '') producer.set(o, k);
  });
  // Native nodes, and Identities of what they make.
  const native: boolean[] = [];
  nodes.forEach((node, k) => {
    const source = producer.get(node.input[0] ?? '');
    native[k] = isNative(node) || (node.op_type === 'Identity' && source !== undefined && native[source] === true);
  });
  const isNativeAt = (k: number) => native[k] === true;
  const consumers = nodes.map(() => [] as number[]);
  nodes.forEach((node, k) => {
    for (const i of node.input) {
      const p = producer.get(i);
      if (p === undefined) continue;
      if (p >= k) throw new Error(`internal: node '${node.name}' reads '${i}' before it is made`);
      consumers[p]?.push(k);
    }
  });

  // Earliest: ORT nodes' segment, native nodes' slot (they run after that segment). A native node that
  // reads graph inputs only (a weight's reorder) runs before the first segment: slot -1.
  const at = new Array<number>(nodes.length).fill(0);
  nodes.forEach((node, k) => {
    let level = isNativeAt(k) ? -1 : 0;
    for (const i of node.input) {
      const p = producer.get(i);
      if (p === undefined) continue;
      const ready = isNativeAt(p) && !isNativeAt(k) ? (at[p] as number) + 1 : (at[p] as number);
      level = Math.max(level, ready, 0);
    }
    at[k] = level;
  });
  // Latest, for ORT nodes that something reads: no later than their first reader. Not an NCHWc
  // ReorderOutput: moved late, its blocked input (channels padded to the block) would cross instead.
  for (let k = nodes.length - 1; k >= 0; k--) {
    if (isNativeAt(k) || (consumers[k] as number[]).length === 0 || isNchwcOp(nodes[k] as NodeProto, 'ReorderOutput'))
      continue;
    at[k] = Math.max(at[k] as number, Math.min(...(consumers[k] as number[]).map((c) => at[c] as number)));
  }

  const types = elementTypes(graph);
  const outputs = (graph.output ?? []).map((o) => o.name);
  const graphOutputs = new Set(outputs);
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const inputInfo = new Map((graph.input ?? []).map((v) => [v.name, v]));
  const declare = (name: string): ValueInfoProto =>
    inputInfo.get(name) ?? declaration(name, types.get(name) ?? 1, shapes.get(name));

  const last = Math.max(0, ...at);
  const steps: SegmentStep[] = [];
  for (let s = -1; s <= last; s++) {
    const members = nodes.map((_, k) => k).filter((k) => !isNativeAt(k) && at[k] === s);
    if (members.length > 0) steps.push(segment(s, members));
    for (const [k, node] of nodes.entries()) if (isNativeAt(k) && at[k] === s) steps.push({ kind: 'native', node });
  }
  return { steps, outputs };

  function segment(index: number, members: number[]): GraphSegment {
    const inside = new Set(members);
    const made = new Set(members.flatMap((k) => (nodes[k] as NodeProto).output));
    const inputs: string[] = [];
    const used = new Set<string>();
    for (const k of members) {
      for (const i of (nodes[k] as NodeProto).input) {
        if (i === '' || made.has(i) || used.has(i)) continue;
        used.add(i);
        if (!initializers.has(i)) inputs.push(i);
      }
    }
    const segmentOutputs = members.flatMap((k) =>
      (nodes[k] as NodeProto).output.filter(
        (o) =>
          o !== '' && (graphOutputs.has(o) || (consumers[k] as number[]).some((c) => !inside.has(c) && reads(c, o))),
      ),
    );
    const body: GraphProto = {
      name: `${graph.name ?? 'graph'}_segment_${index}`,
      node: members.map((k) => nodes[k] as NodeProto),
      initializer: [...used]
        .filter((i) => initializers.has(i))
        .map((i) => initializers.get(i) as NonNullable<ReturnType<typeof initializers.get>>),
      input: inputs.map(declare),
      output: segmentOutputs.map(declare),
    };
    return { kind: 'graph', model: { ...model, graph: body }, inputs, outputs: segmentOutputs };
  }

  function reads(k: number, value: string): boolean {
    return (nodes[k] as NodeProto).input.includes(value);
  }
}

function declaration(name: string, elemType: number, shape: Dim[] | undefined): ValueInfoProto {
  const tensor: NonNullable<NonNullable<ValueInfoProto['type']>['tensor_type']> = { elem_type: elemType };
  if (shape) tensor.shape = { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name, type: { tensor_type: tensor } };
}
