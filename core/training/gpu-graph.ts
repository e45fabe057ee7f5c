/**
 * The step graph for GPU providers. Every node ORT leaves on the CPU costs a round trip to the device in each
 * step (profiled on an H200 through WebGPU: of cnn's 51 ms step, 21 ms were copies to and from the host,
 * around MaxPool with Indices, MaxUnpool and Sum, which the WebGPU provider does not run). So on a GPU the
 * max-pool gradient is found and routed by float ops ('first-max-mask'), and on WebGPU the loss's log-softmax
 * is built from plain ops (training-graph.ts's plainLogSoftmax) and Sums become chains of Adds. Left on the
 * CPU there: the labels' OneHot and the correct count's Equal (the graph's edges) and scalar arithmetic on the
 * batch size (test/webgpu.test.ts checks the placement of every zoo model's step).
 * (The forward's residual joins are Sums because ORT's CPU provider fuses Conv + Add into a FusedConv that
 * overwrites the residual the backward still reads: as Adds, this graph computes wrong gradients on the CPU
 * provider at level 'all'. WebGPU does not apply that CPU fusion; CUDA keeps its Sums.)
 */

import type { NodeProto } from '../../onnx/schema.ts';
import type { GradientRule } from '../autodiff/rule.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import { maxPoolRule } from '../autodiff/rules/pooling.ts';
import type { Device } from '../ort-runtime.ts';

export const GPU_GRADIENT_RULES: Record<string, GradientRule> = {
  ...gradientRules,
  MaxPool: maxPoolRule(() => 'first-max-mask'),
};

/** How the step graph is built for `device`: its rule table (unless the caller gives one), its loss, its last rewrite. */
export interface StepGraphChoices {
  rules?: Record<string, GradientRule>;
  plainLogSoftmax: boolean;
  finish: (nodes: NodeProto[]) => NodeProto[];
}

export function stepGraphFor(device: Device | undefined): StepGraphChoices {
  const webgpu = device === 'webgpu';
  return {
    rules: webgpu || device === 'cuda' ? GPU_GRADIENT_RULES : undefined,
    plainLogSoftmax: webgpu,
    // Not on CUDA, which has a Sum kernel: see above for why the residual joins are Sums.
    finish: (nodes) => (webgpu ? sumsAsAdds(nodes) : nodes),
  };
}

/** The nodes with every n-input Sum replaced by n − 1 Adds (same output name); other nodes as they are. */
export function sumsAsAdds(nodes: readonly NodeProto[]): NodeProto[] {
  const taken = new Set(nodes.flatMap((node) => [...node.input, ...node.output, node.name ?? '']));
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  return nodes.flatMap((node) => {
    if (node.op_type !== 'Sum' || node.domain || node.input.length < 2) return [node];
    const [first, ...rest] = node.input as string[];
    const out = node.output[0] as string;
    let acc = first as string;
    return rest.map((term, i) => {
      const output = i === rest.length - 1 ? out : fresh(`${out}_partial${i}`);
      const add: NodeProto = {
        op_type: 'Add',
        name: fresh(`${node.name || out}_add${i}`),
        input: [acc, term],
        output: [output],
      };
      acc = output;
      return add;
    });
  });
}
