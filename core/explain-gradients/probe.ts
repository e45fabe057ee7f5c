/**
 * The shapes a gradient graph needs, measured rather than inferred: the gradient rules ask for the static
 * shape of every value on the image's path (a Conv's input and output, a broadcast operand…), and a
 * served file records none of them. So the model runs once on a blank batch with every such value added
 * as a graph output, and ONNX Runtime reports their dims — exact for any op it runs, with no second
 * implementation of shape inference to keep in step.
 */
import type { Dim } from '../../onnx/builder.ts';
import { toNumber } from '../../onnx/numbers.ts';
import type { ModelProto } from '../../onnx/schema.ts';
import { DataType } from '../../onnx/schema.ts';
import { imageValues } from '../deploy/explain.ts';

/**
 * The probe batch when the model's batch is dynamic: an odd size no channel or spatial axis of an MNIST
 * model has, so axis 0 of a measured shape can be read back as the batch ('N').
 */
export const PROBE_BATCH = 3;

/** A model to run once, and how to read its outputs' dims back as shapes. */
export interface ShapeProbe {
  /** The source model with every float value computed from the image added as an output. */
  model: ModelProto;
  /** The image input and the dims to feed it (zeros do). */
  input: { name: string; dims: number[] };
  /** The values whose dims the run reports. */
  values: string[];
  /** Whether axis 0 is a dynamic batch (then measured shapes get 'N' there). */
  dynamicBatch: boolean;
}

/** The first graph input that is not an initializer: the image. */
export function imageInput(model: ModelProto): { name: string; dims: Dim[] } {
  const graph = model.graph ?? {};
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const input = (graph.input ?? []).find((i) => !initializers.has(i.name));
  if (!input) throw new Error('the model has no image input');
  const dims = (input.type?.tensor_type?.shape?.dim ?? []).map((d) =>
    d.dim_value !== undefined ? toNumber(d.dim_value) : (d.dim_param ?? '?'),
  );
  if (dims.length !== 4) throw new Error(`input '${input.name}' must be [N, 1, 28, 28], got [${dims.join(', ')}]`);
  return { name: input.name, dims };
}

export function shapeProbe(source: ModelProto): ShapeProbe {
  const model = structuredClone(source);
  const graph = model.graph ?? {};
  const { name, dims } = imageInput(model);
  const dynamicBatch = typeof dims[0] !== 'number';
  const feedDims = dims.map((d, axis) => (typeof d === 'number' ? d : axis === 0 ? PROBE_BATCH : Number.NaN));
  if (feedDims.some(Number.isNaN)) throw new Error(`input '${name}' has a dynamic axis besides the batch`);
  const values = [...imageValues(graph)].filter((v) => v !== name);
  const present = new Set((graph.output ?? []).map((o) => o.name));
  graph.output = [
    ...(graph.output ?? []),
    ...values
      .filter((v) => !present.has(v))
      .map((v) => ({ name: v, type: { tensor_type: { elem_type: DataType.FLOAT } } })),
  ];
  return { model, input: { name, dims: feedDims }, values, dynamicBatch };
}

/** The measured dims as the shapes `GraphBuilder` records, with the batch axis named 'N' when it is dynamic. */
export function probedShapes(
  probe: ShapeProbe,
  measured: Readonly<Record<string, readonly number[]>>,
): Map<string, Dim[]> {
  const batch = (dims: readonly number[]): Dim[] =>
    probe.dynamicBatch && dims[0] === PROBE_BATCH ? ['N', ...dims.slice(1)] : [...dims];
  const shapes = new Map<string, Dim[]>([[probe.input.name, batch(probe.input.dims)]]);
  for (const value of probe.values) {
    const dims = measured[value];
    if (!dims) throw new Error(`the shape probe did not report '${value}'`);
    shapes.set(value, batch(dims));
  }
  return shapes;
}
