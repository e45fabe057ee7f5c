/**
 * The shape of a network as the explainer draws it: a column of stages, where a stage is one layer or a
 * block of parallel branches that fork from one value and meet again in one node — an Inception module
 * (branches joined by Concat) or a residual block (a branch and the shortcut joined by Add; an empty
 * branch is the identity shortcut). Read off the graph's wiring, so any model gets it, not only the zoo's.
 */
import type { ModelProto, NodeProto } from '../../onnx/schema.ts';
import { type ExplainLayer, explainLayers, imageValues } from './explain.ts';

export interface LayerStage {
  kind: 'layer';
  layer: ExplainLayer;
}

export interface BlockStage {
  kind: 'block';
  /** The op that joins the branches: 'Concat' (Inception), 'Add' (residual), … */
  joinOp: string;
  /** Each branch's layers in order; [] is a shortcut that passes the fork's value on unchanged. */
  branches: ExplainLayer[][];
  /** The join itself when it is a layer (Add); absent for Concat, which only stacks channels. */
  join?: ExplainLayer;
}

export type ExplainStage = LayerStage | BlockStage;

/** Longest branch followed before giving up (a guard against odd graphs, far above any zoo model). */
const MAX_BRANCH = 64;

export function explainStages(model: ModelProto): ExplainStage[] {
  const nodes = model.graph?.node ?? [];
  const image = imageValues(model.graph ?? {});
  const layerOf = new Map(explainLayers(model).map((l) => [l.output, l]));
  const readersOf = (value: string) => nodes.filter((n) => n.input.includes(value));
  const imageInputs = (n: NodeProto) => n.input.filter((i) => image.has(i));

  /** From each reader of a fork, follow single-reader chains to the node that merges several values. */
  function branchesFrom(readers: NodeProto[]): { chains: NodeProto[][]; join: NodeProto } | undefined {
    const chains: NodeProto[][] = [];
    let join: NodeProto | undefined;
    for (const reader of readers) {
      const chain: NodeProto[] = [];
      let node = reader;
      while (imageInputs(node).length < 2) {
        chain.push(node);
        const next = readersOf(node.output[0] ?? '');
        if (next.length !== 1 || chain.length > MAX_BRANCH) return undefined;
        node = next[0] as NodeProto;
      }
      if (join && join !== node) return undefined;
      join = node;
      chains.push(chain);
    }
    return join ? { chains, join } : undefined;
  }

  const placed = new Set<NodeProto>();
  const stages: ExplainStage[] = [];
  for (const first of nodes) {
    let node: NodeProto | undefined = first;
    while (node && !placed.has(node)) {
      placed.add(node);
      const layer = layerOf.get(node.output[0] ?? '');
      if (layer && !stages.some((s) => s.kind === 'block' && s.join === layer)) stages.push({ kind: 'layer', layer });
      const readers = readersOf(node.output[0] ?? '');
      const block = readers.length > 1 ? branchesFrom(readers) : undefined;
      if (!block) break;
      for (const chain of block.chains) for (const n of chain) placed.add(n);
      const join = layerOf.get(block.join.output[0] ?? '');
      stages.push({
        kind: 'block',
        joinOp: block.join.op_type,
        branches: block.chains.map((chain) => chain.flatMap((n) => layerOf.get(n.output[0] ?? '') ?? [])),
        ...(join ? { join } : {}),
      });
      node = block.join; // its own output may fork again (DenseNet)
    }
  }
  return stages;
}
