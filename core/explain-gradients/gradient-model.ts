/**
 * The gradient graph behind saliency, Grad-CAM and adversarial digits: a served model.onnx, extended with
 * our own `backward` (the same rule table the trainer uses) so one ONNX Runtime run gives the logits and
 *
 *   J = Σₖ wₖ·zₖ − λ·log Σₖ exp(zₖ)      (z: the logits; w, λ: inputs, per image)
 *
 * differentiated with respect to the input image and to the last Conv's output maps. With w one-hot for
 * class c and λ = 0, J is c's score (saliency, Grad-CAM: "why a 7?", "why not a 9?"); with λ = 1 it is
 * log p(c), whose gradient is minus the cross-entropy's (adversarial steps). The seed dJ/dz = w − λ·softmax(z)
 * is computed in the graph, so one graph serves every class and both objectives.
 */
import { int } from '../../onnx/attributes.ts';
import { type Dim, GraphBuilder, OPSET } from '../../onnx/builder.ts';
import { toNumber } from '../../onnx/numbers.ts';
import type { ModelProto, NodeProto, TensorProto } from '../../onnx/schema.ts';
import { backward } from '../autodiff/backward.ts';
import type { GradientRule } from '../autodiff/rule.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import { LOGITS_NAME, NUM_CLASSES } from '../contract.ts';
import { imageValues } from '../deploy/explain.ts';
import { imageInput } from './probe.ts';

/** Names of the gradient model's extra inputs and outputs. */
export const GRADIENT_NAMES = {
  /** Input w [N, 10]: each class's weight in J. */
  classWeights: 'class_weights',
  /** Input λ [N, 1]: the log-sum-exp's weight in J (0: a class score; 1: a log-probability). */
  logSumExpWeight: 'log_sum_exp_weight',
  /** Output dJ/dx, the input's shape. */
  inputGradient: 'input_gradient',
  /** Output: the last Conv's output maps [N, K, h, w] … */
  camMaps: 'cam_maps',
  /** … and dJ/d(those maps). */
  camGradient: 'cam_gradient',
} as const;

export interface GradientModel {
  model: ModelProto;
  /** The image input's name. */
  input: string;
  /** The logits output's name (the source's). */
  logits: string;
  /** The Conv whose output Grad-CAM weighs (see camConv); absent in a model with none. */
  camLayer?: { node: string; output: string; shape: Dim[] };
}

/** The logits: the output named `logits`, else the first output. */
function logitsOf(model: ModelProto): string {
  const outputs = (model.graph?.output ?? []).map((o) => o.name);
  const name = outputs.includes(LOGITS_NAME) ? LOGITS_NAME : outputs[0];
  if (!name) throw new Error('the model has no outputs');
  return name;
}

/** A Constant node's value tensor, whose dims a broadcast operand's gradient needs. */
const constantValue = (attribute: { name: string; t?: TensorProto }[] | undefined) =>
  attribute?.find((a) => a.name === 'value')?.t;

/** Ops that give back a weight stored in another type, in its shape (precision.ts's variants). */
const WEIGHT_RESTORING_OPS = new Set(['Cast', 'DequantizeLinear']);

/**
 * A builder holding the source graph as it is, every value name reserved, the shapes known: initializers'
 * and Constants' from their tensors, the rest from the probe (probe.ts).
 */
function builderOf(source: ModelProto, shapes: ReadonlyMap<string, Dim[]>): GraphBuilder {
  const graph = structuredClone(source.graph ?? {});
  const g = new GraphBuilder(graph.name || 'model');
  for (const t of graph.initializer ?? []) {
    g.initializers.push(t);
    g.shapes.set(t.name ?? '', (t.dims ?? []).map(toNumber));
  }
  g.inputs.push(...(graph.input ?? []));
  g.outputs.push(...(graph.output ?? []));
  for (const node of graph.node ?? []) {
    g.nodes.push(node);
    if (node.name) g.uniqueName(node.name);
    const value = node.op_type === 'Constant' ? constantValue(node.attribute) : undefined;
    if (value) g.shapes.set(node.output[0] as string, (value.dims ?? []).map(toNumber));
    // An fp16 or int8 variant's weights reach their Conv/Gemm through a Cast or DequantizeLinear.
    const stored = WEIGHT_RESTORING_OPS.has(node.op_type) ? g.shapes.get(node.input[0] ?? '') : undefined;
    if (stored) g.shapes.set(node.output[0] as string, stored);
  }
  for (const name of [...g.initializers.map((t) => t.name), ...g.inputs.map((i) => i.name)]) g.uniqueName(name ?? '');
  for (const node of g.nodes) for (const name of [...node.input, ...node.output]) if (name) g.uniqueName(name);
  for (const [name, shape] of shapes) g.shapes.set(name, shape);
  return g;
}

/** Whether `logits` can still be reached from `input` once `cut` is removed (nodes in topological order). */
function reachableWithout(nodes: readonly NodeProto[], input: string, logits: string, cut: string): boolean {
  const reached = new Set([input]);
  for (const n of nodes) if (n.input.some((i) => i !== cut && reached.has(i))) for (const o of n.output) reached.add(o);
  return reached.has(logits);
}

/** Maps smaller than this (cnn7's last Conv is 1×1, cnn3's 2×2) cannot say where: Grad-CAM looks earlier. */
export const MIN_CAM_SIDE = 4;

/**
 * Grad-CAM's layer: the last Conv on the image's path that every path to the logits goes through, so its
 * maps carry the whole decision (Inception's last Conv sits in one branch, a ResNet's beside a shortcut),
 * with maps of at least MIN_CAM_SIDE² cells; relaxing those wishes in that order when no Conv meets them;
 * undefined without a Conv (an MLP).
 */
function camConv(g: GraphBuilder, source: ModelProto, input: string, logits: string) {
  const nodes = source.graph?.node ?? [];
  const image = imageValues(source.graph ?? {});
  const convs = nodes.filter((n) => n.op_type === 'Conv' && image.has(n.output[0] ?? ''));
  const dominates = (n: NodeProto) => !reachableWithout(nodes, input, logits, n.output[0] as string);
  const large = (n: NodeProto) => {
    const [, , h, w] = g.shapeOf(n.output[0] as string);
    return typeof h === 'number' && typeof w === 'number' && Math.min(h, w) >= MIN_CAM_SIDE;
  };
  const chosen = convs.findLast((n) => dominates(n) && large(n)) ?? convs.findLast(dominates) ?? convs.at(-1);
  return chosen && { node: chosen.name ?? '', output: chosen.output[0] as string };
}

/**
 * Build the gradient model of `source`, with the shapes `probedShapes` measured. Fails naming the op when
 * a node on the gradient's path has no rule (e.g. 'no gradient rule for op 'Tanh' …').
 */
export function gradientModel(
  source: ModelProto,
  shapes: ReadonlyMap<string, Dim[]>,
  rules: Record<string, GradientRule> = gradientRules,
): GradientModel {
  const g = builderOf(source, shapes);
  const input = imageInput(source).name;
  const logits = logitsOf(source);
  const cam = camConv(g, source, input, logits);
  const logitsShape = g.shapeOf(logits);
  const batch = logitsShape[0] as Dim;
  if (logitsShape.length !== 2 || logitsShape[1] !== NUM_CLASSES) {
    throw new Error(`output '${logits}' must be [N, ${NUM_CLASSES}] logits, got [${logitsShape.join(', ')}]`);
  }

  const w = g.input(GRADIENT_NAMES.classWeights, 'FLOAT', [batch, NUM_CLASSES]);
  const lambda = g.input(GRADIENT_NAMES.logSumExpWeight, 'FLOAT', [batch, 1]);
  // dJ/dz = w − λ·softmax(z): built before `backward`, which differentiates only what it finds already there.
  const seed = g.op('Sub', [w, g.op('Mul', [lambda, g.op('Softmax', [logits], { axis: int(1) })])]);

  const grads = backward(g, new Map([[logits, seed]]), cam ? [input, cam.output] : [input], { rules });
  g.output(grads.get(input) as string, 'FLOAT', g.shapeOf(input), GRADIENT_NAMES.inputGradient);
  const camShape = cam && g.shapeOf(cam.output);
  if (cam && camShape) {
    g.output(cam.output, 'FLOAT', camShape, GRADIENT_NAMES.camMaps);
    g.output(grads.get(cam.output) as string, 'FLOAT', camShape, GRADIENT_NAMES.camGradient);
  }

  const opset = Math.max(
    OPSET,
    ...(source.opset_import ?? []).filter((o) => !o.domain).map((o) => toNumber(o.version)),
  );
  const model = g.toModel({ opset, irVersion: Math.max(8, toNumber(source.ir_version)) });
  model.metadata_props = structuredClone(source.metadata_props ?? []);
  return { model, input, logits, ...(cam && camShape ? { camLayer: { ...cam, shape: camShape } } : {}) };
}
