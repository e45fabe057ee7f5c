/**
 * The step graph for GPU providers. Every node ORT leaves on the CPU costs a round trip to the device in each
 * step (profiled on an H200 through WebGPU: of cnn's 51 ms step, 21 ms were copies to and from the host,
 * around MaxPool with Indices, MaxUnpool and Sum, which the WebGPU provider does not run). So on a GPU the
 * max-pool gradient is routed by Equal and Where ('first-max-mask') and Sums become chains of Adds.
 */

import type { NodeProto } from '../../onnx/schema.ts';
import type { GradientRule } from '../autodiff/rule.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import { maxPoolRule } from '../autodiff/rules/pooling.ts';

export const GPU_GRADIENT_RULES: Record<string, GradientRule> = {
  ...gradientRules,
  MaxPool: maxPoolRule(() => 'first-max-mask'),
};

/** The nodes with every n-input Sum replaced by n − 1 Adds (same output name); other nodes as they are. */
export function sumsAsAdds(nodes: readonly NodeProto[]): NodeProto[] {
  return nodes.flatMap((node) => {
    if (node.op_type !== 'Sum' || node.domain || node.input.length < 2) return [node];
    const [first, ...rest] = node.input as string[];
    let acc = first as string;
    return rest.map((term, i) => {
      const last = i === rest.length - 1;
      const output = last ? (node.output[0] as string) : `${node.output[0]}_partial${i}`;
      const add: NodeProto = { op_type: 'Add', name: `${node.name}_add${i}`, input: [acc, term], output: [output] };
      acc = output;
      return add;
    });
  });
}
