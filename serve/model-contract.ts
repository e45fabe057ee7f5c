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
import { ellipsized } from './ellipsized.ts';

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
/** A name as a message shows it: cut, so a model's own strings can't make an answer or a log line long. */
const shown = (name: string) => ellipsized(name, 64);
const showShape = (v: ValueDescription) =>
  `${shown(v.name)} ${v.dataType} [${v.shape
    .slice(0, 8)
    .map((d) => shown(String(d)))
    .join(',')}${v.shape.length > 8 ? ',…' : ''}]`;

/**
 * What a served signature may hold: every name and shape of it is echoed by metadata, configs, errors and
 * gRPC — an outside attack's model with 3-million-character input and output names made each
 * GET /v2/models/<m> a 6 MB answer (20 unread connections: 2.4 GB).
 */
export const SIGNATURE_LIMITS = { nameChars: 256, outputs: 16, rank: 8 } as const;

function checkSizes(info: ModelDescription): void {
  const { nameChars, outputs, rank } = SIGNATURE_LIMITS;
  if (info.inputs.length > outputs)
    throw new ContractError(
      `the model has ${info.inputs.length} inputs; one float input [N,${IMAGE_SHAPE.join(',')}] is served`,
    );
  if (info.outputs.length > outputs)
    throw new ContractError(`the model has ${info.outputs.length} outputs; at most ${outputs} can be served`);
  for (const v of [...info.inputs, ...info.outputs]) {
    if (v.name.length > nameChars)
      throw new ContractError(`'${shown(v.name)}' is a name of ${v.name.length} characters; at most ${nameChars}`);
    if (v.shape.length > rank)
      throw new ContractError(`'${shown(v.name)}' has rank ${v.shape.length}; at most ${rank}`);
    for (const d of v.shape)
      if (typeof d === 'string' && d.length > nameChars)
        throw new ContractError(
          `'${shown(v.name)}' has a dimension named with ${d.length} characters; at most ${nameChars}`,
        );
  }
}

/** Check a model's declared signature against the contract (the row check needs a real run: `checkRows`). */
export function checkSignature(info: ModelDescription): ModelSignature {
  checkSizes(info);
  const expected = `one float input [N,${IMAGE_SHAPE.join(',')}]`;
  const [input] = info.inputs;
  if (info.inputs.length !== 1 || !input)
    throw new ContractError(`expected ${expected}, found ${info.inputs.map(showShape).join(', ') || 'no input'}`);
  const [batch, ...rest] = input.shape;
  if (input.dataType !== 'FLOAT' || rest.join() !== IMAGE_SHAPE.join())
    throw new ContractError(`expected ${expected}, found ${showShape(input)}`);
  if (!isDynamic(batch) && batch !== 1)
    throw new ContractError(`input ${shown(input.name)} has a static batch of ${batch}; only N or 1 can be served`);
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
  // Declared per-image dims, where all are static, are what v2 answers show as the shape: they must hold what
  // the model really gives (an outside attack: [N,20] declared, 10 given, answered as shape [2,20] with 20 values).
  for (const output of signature.outputs) {
    const perImage = output.shape.slice(1);
    if (perImage.some(isDynamic)) continue; // [N] declares one value per image
    const declared = perImage.reduce<number>((product, d) => product * (d as number), 1);
    if (declared !== rowSizes[output.name])
      throw new ContractError(
        `output ${showShape(output)} declares ${declared} values per image but gave ${rowSizes[output.name]}`,
      );
  }
  return rowSizes;
}
