/**
 * Turn a plain inference graph (input `input` normalized, output `logits`) into the deployable model:
 * BatchNorm folded into preceding convs, the input normalization folded in (clients send raw [0,1]),
 * outputs `logits` and `probabilities`, and the metadata a user needs.
 */

import { int, toAttributeProto } from '../../onnx/attributes.ts';
import { describeModel } from '../../onnx/describe.ts';
import type { ModelProto, ValueInfoProto } from '../../onnx/schema.ts';
import { INPUT_NAME, LOGITS_NAME, PROBABILITIES_NAME } from '../contract.ts';
import { foldBatchNorms } from './fold-batchnorm.ts';
import { foldNormalization, type NormalizationFold } from './fold-normalization.ts';
import { GraphEditor } from './graph-edit.ts';
import { INPUT_CONTRACT, METADATA_KEYS } from './metadata.ts';

export interface DeployOptions {
  inputName?: string;
  logitsName?: string;
  mean: number;
  std: number;
  metadata: Record<string, string>;
}

export interface DeployReport {
  normalization: NormalizationFold;
  foldedBatchNorms: number;
}

export { PROBABILITIES_NAME };

export function makeDeployable(
  source: ModelProto,
  options: DeployOptions,
): { model: ModelProto; report: DeployReport } {
  const model = structuredClone(source);
  const input = options.inputName ?? INPUT_NAME;
  const logits = options.logitsName ?? LOGITS_NAME;
  const editor = new GraphEditor(model.graph ?? {});
  const foldedBatchNorms = foldBatchNorms(editor);
  const normalization = foldNormalization(editor, input, options.mean, options.std);

  const logitsInfo = (model.graph?.output ?? []).find((o) => o.name === logits);
  if (!logitsInfo) throw new Error(`the model has no output '${logits}'`);
  const softmax = {
    op_type: 'Softmax',
    name: 'probabilities',
    input: [logits],
    output: [PROBABILITIES_NAME],
    attribute: [toAttributeProto('axis', int(1))],
  };
  editor.graph.node = [...editor.nodes, softmax];
  const probabilities: ValueInfoProto = { ...structuredClone(logitsInfo), name: PROBABILITIES_NAME };
  model.graph = { ...editor.graph, output: [logitsInfo, probabilities] };

  const metadata: Record<string, string> = {
    ...options.metadata,
    [METADATA_KEYS.input]: INPUT_CONTRACT,
    [METADATA_KEYS.normalization]: `folded into the graph (${normalization}): (x − ${options.mean})/${options.std}`,
    [METADATA_KEYS.labels]: '0,1,2,3,4,5,6,7,8,9',
    [METADATA_KEYS.parameters]: String(describeModel(model).parameterCount),
  };
  model.metadata_props = Object.entries(metadata).map(([key, value]) => ({ key, value }));
  return { model, report: { normalization, foldedBatchNorms } };
}
