/**
 * Fold inference-mode BatchNormalization into the Conv right before it, when the Conv's output feeds
 * nothing else: with s = γ/√(var + ε) per output channel, W' = W·s and b' = (b − mean)·s + β.
 * Returns how many were folded; BatchNorms after anything else (a Concat, in DenseNet) stay as they are.
 */

import { toNumber } from '../../onnx/numbers.ts';
import { attrFloat, attrInt } from '../../onnx/read-attributes.ts';
import { floatTensor } from '../../onnx/tensor.ts';
import type { GraphEditor } from './graph-edit.ts';

export function foldBatchNorms(editor: GraphEditor): number {
  let folded = 0;
  for (const bn of editor.nodes.filter((n) => n.op_type === 'BatchNormalization')) {
    const convOut = bn.input[0] as string;
    const conv = editor.producer(convOut);
    if (conv?.op_type !== 'Conv' || editor.consumers(convOut).length !== 1 || editor.isGraphOutput(convOut)) continue;
    if (attrInt(bn, 'training_mode', 0) !== 0) continue;
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => editor.floatInitializer(bn.input[i]));
    const weight = editor.floatInitializer(conv.input[1]);
    if (!gamma || !beta || !mean || !variance || !weight) continue;
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const outChannels = weight.dims[0] as number;
    const perChannel = weight.data.length / outChannels;
    const bias = editor.floatInitializer(conv.input[2]);
    const w = new Float32Array(weight.data.length);
    const b = new Float32Array(outChannels);
    for (let o = 0; o < outChannels; o++) {
      const s = (gamma.data[o] as number) / Math.sqrt((variance.data[o] as number) + eps);
      for (let k = 0; k < perChannel; k++) w[o * perChannel + k] = (weight.data[o * perChannel + k] as number) * s;
      b[o] = (((bias?.data[o] as number | undefined) ?? 0) - (mean.data[o] as number)) * s + (beta.data[o] as number);
    }
    const wName = `${conv.input[1]}.bn_folded`;
    const bName = `${conv.input[1]}.bn_folded_bias`;
    editor.setInitializer(wName, floatTensor(weight.dims.map(toNumber), w));
    editor.setInitializer(bName, floatTensor([outChannels], b));
    conv.input = [conv.input[0] as string, wName, bName];
    editor.rewire(bn.output[0] as string, convOut);
    editor.removeNode(bn);
    folded++;
  }
  editor.pruneInitializers();
  return folded;
}
