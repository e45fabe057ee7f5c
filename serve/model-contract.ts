/**
 * The contract a served model must meet, checked when it loads — a model that breaks it is "not ready"
 * with a reason, never served:
 *  - one input, float32, shape [N,1,28,28] with N dynamic, or a static batch of 1 (torch.onnx.export's
 *    default: such a model is served by running the images of a batch one at a time);
 *  - a logits output (named `logits`, else the first output) of shape [N,10];
 *  - every output has one row per input image — verified by a real run on two images for dynamic models,
 *    so a model that mixes rows can never let one client's image change another client's answer.
 */

import { IMAGE_SHAPE, LOGITS_NAME, NUM_CLASSES } from '../core/contract.ts';
import type { Dim } from '../onnx/builder.ts';
import type { ModelDescription, ValueDescription } from '../onnx/describe.ts';

export class ContractError extends Error {
  override name = 'ContractError';
}

export interface ModelSignature {
  input: ValueDescription;
  outputs: ValueDescription[];
  /** The output /predict reads. */
  logits: string;
  /** The model takes exactly one image per run. */
  staticBatchOne: boolean;
}

const isDynamic = (d: Dim | undefined) => typeof d === 'string' || (typeof d === 'number' && d <= 0);
const showShape = (v: ValueDescription) => `${v.name} ${v.dataType} [${v.shape.join(',')}]`;

/** Check a model's declared signature against the contract (the row check needs a real run: `checkRows`). */
export function checkSignature(info: ModelDescription): ModelSignature {
  const expected = `one float input [N,${IMAGE_SHAPE.join(',')}]`;
  const [input] = info.inputs;
  if (info.inputs.length !== 1 || !input)
    throw new ContractError(`expected ${expected}, found ${info.inputs.map(showShape).join(', ') || 'no input'}`);
  const [batch, ...rest] = input.shape;
  if (input.dataType !== 'FLOAT' || rest.join() !== IMAGE_SHAPE.join())
    throw new ContractError(`expected ${expected}, found ${showShape(input)}`);
  if (!isDynamic(batch) && batch !== 1)
    throw new ContractError(`input ${input.name} has a static batch of ${batch}; only N or 1 can be served`);
  const logits = info.outputs.find((o) => o.name === LOGITS_NAME) ?? info.outputs[0];
  if (!logits) throw new ContractError('the model has no output');
  const [, classes, ...more] = logits.shape;
  if (logits.shape.length !== 2 || (classes !== NUM_CLASSES && !isDynamic(classes)) || more.length > 0)
    throw new ContractError(`output ${showShape(logits)} is not [N,${NUM_CLASSES}] logits`);
  for (const output of info.outputs)
    if (output.dataType !== 'FLOAT') throw new ContractError(`output ${showShape(output)} is not float32`);
  return { input, outputs: info.outputs, logits: logits.name, staticBatchOne: batch === 1 };
}

/**
 * Elements per image of every output, from a real run on `rows` images; refuses outputs that don't have
 * exactly one row per image, and logits that aren't 10 wide.
 */
export function checkRows(signature: ModelSignature, outputs: Record<string, ArrayLike<number>>, rows: number) {
  const rowSizes: Record<string, number> = {};
  for (const { name } of signature.outputs) {
    const length = outputs[name]?.length ?? 0;
    if (length === 0 || length % rows !== 0)
      throw new ContractError(`output ${name} gave ${length} values for ${rows} images: not one row per image`);
    rowSizes[name] = length / rows;
  }
  if (rowSizes[signature.logits] !== NUM_CLASSES)
    throw new ContractError(
      `output ${signature.logits} gave ${rowSizes[signature.logits]} values per image, not ${NUM_CLASSES}`,
    );
  return rowSizes;
}
