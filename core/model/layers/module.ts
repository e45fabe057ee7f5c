/**
 * The layer machinery: a Module emits ONNX ops for its forward pass into a ModelContext, which
 * names its parameters (PyTorch state_dict style: `incep1.branch1x1.weight`), tracks shapes, and
 * records one summary row per module call (output shape, parameters, multiply-accumulates).
 *
 * One traversal gives the graph, the parameter list and the summary, so they can never disagree.
 */

import type { GraphBuilder } from '../../../onnx/builder.ts';
import { floatTensor, sizeOf } from '../../../onnx/tensor.ts';

/** A value in the graph: its name and its per-example shape (the batch dimension N is implied). */
export interface Value {
  name: string;
  shape: number[];
}

/** The dynamic batch dimension's name in every graph we write. */
export const BATCH_DIM = 'N';

/** How a parameter starts: PyTorch's defaults are uniform(±bound) for weights/biases, constants for BatchNorm. */
export type Init = { kind: 'uniform'; bound: number } | { kind: 'constant'; value: number };

export interface ParamSpec {
  /** Full dotted name, e.g. `conv1.weight`. */
  name: string;
  shape: number[];
  init: Init;
  /** false for buffers such as BatchNorm's running statistics. */
  trainable: boolean;
}

export interface LayerRow {
  /** Dotted module path, e.g. `incep1.branch5x5_2`. */
  path: string;
  type: string;
  depth: number;
  outputShape: number[];
  /** Trainable parameters owned by this module and its children. */
  params: number;
  /** Multiply-accumulates per example in Conv and Linear layers inside it. */
  macs: number;
  /** Whether it contains no other module calls. */
  leaf: boolean;
}

/** A per-step random input the trainer feeds, e.g. a dropout mask: 0 or 1/(1 − p) per element. */
export interface RandomInputSpec {
  name: string;
  /** Per-example shape; the fed tensor is [N, ...shape]. */
  shape: number[];
  dropProbability: number;
}

export interface Module {
  readonly type: string;
  forward(ctx: ModelContext, x: Value): Value;
}

/** Where parameters live in the emitted graph: fed as inputs (training) or stored as initializers (deployment). */
export type ParamPlacement = { as: 'inputs' } | { as: 'initializers'; values: ReadonlyMap<string, Float32Array> };

export class ModelContext {
  readonly params: ParamSpec[] = [];
  readonly rows: LayerRow[] = [];
  /** Training form: new values of buffers (BatchNorm running statistics) by buffer name. */
  readonly stateUpdates = new Map<string, string>();
  /** Training form: random inputs the trainer must feed each step. */
  readonly randomInputs: RandomInputSpec[] = [];
  private readonly path: string[] = [];
  private totalMacs = 0;
  private callCount = 0;

  constructor(
    readonly graph: GraphBuilder,
    readonly placement: ParamPlacement = { as: 'inputs' },
    /** Training form of BatchNorm/Dropout; the training engine sets it. */
    readonly training = false,
  ) {}

  /** A per-example value; records its batched shape [N, ...shape] in the graph for the gradient rules. */
  value(name: string, shape: number[]): Value {
    this.graph.shapes.set(name, [BATCH_DIM, ...shape]);
    return { name, shape };
  }

  /** Total multiply-accumulates per example counted so far. */
  get macs(): number {
    return this.totalMacs;
  }

  private qualified(name: string): string {
    return [...this.path, name].filter(Boolean).join('.');
  }

  /**
   * Declare a parameter of the current module; returns the graph value that holds it.
   * A module called twice (PyTorch's reused `self.pooling`, or a shared layer) gets the same value back.
   */
  param(name: string, shape: number[], init: Init, trainable = true): string {
    const full = this.qualified(name);
    const existing = this.params.find((p) => p.name === full);
    if (existing) {
      if (existing.shape.join() !== shape.join()) throw new Error(`parameter ${full} redeclared with another shape`);
      return full;
    }
    this.params.push({ name: full, shape, init, trainable });
    if (this.placement.as === 'inputs') {
      this.graph.input(full, 'FLOAT', shape);
    } else {
      const values = this.placement.values.get(full);
      if (!values) throw new Error(`no value given for parameter ${full}`);
      this.graph.initializer(full, floatTensor(shape, values));
    }
    return full;
  }

  /** Training form: declare that buffer `param` (a name from `param()`) takes `value` after the step. */
  updateState(param: string, value: string): void {
    this.stateUpdates.set(param, value);
  }

  /** Training form: a fresh random input of the current module, fed by the trainer each step. */
  randomInput(name: string, shape: number[], dropProbability: number): string {
    const full = this.qualified(name);
    this.randomInputs.push({ name: full, shape, dropProbability });
    return this.graph.input(full, 'FLOAT', [BATCH_DIM, ...shape]);
  }

  /** Count multiply-accumulates per example (Conv and Linear call this). */
  countMacs(macs: number): void {
    this.totalMacs += macs;
  }

  /** Run `module` under `name`, recording its summary row. */
  call(name: string, module: Module, x: Value): Value {
    const depth = this.path.length;
    const paramsBefore = this.trainableCount();
    const macsBefore = this.totalMacs;
    const callsBefore = ++this.callCount;
    if (name) this.path.push(name);
    const rowIndex = this.rows.length;
    let y: Value;
    try {
      y = module.forward(this, x);
    } finally {
      if (name) this.path.pop();
    }
    const row: LayerRow = {
      path: this.qualified(name),
      type: module.type,
      depth,
      outputShape: y.shape,
      params: this.trainableCount() - paramsBefore,
      macs: this.totalMacs - macsBefore,
      leaf: this.callCount === callsBefore,
    };
    this.rows.splice(rowIndex, 0, row); // parents before their children, as torchinfo prints them
    return y;
  }

  private trainableCount(): number {
    return this.params.filter((p) => p.trainable).reduce((n, p) => n + sizeOf(p.shape), 0);
  }
}

/** The callable view of a composite module's children inside its forward. */
export type Children<C extends Record<string, Module>> = { [K in keyof C]: (x: Value) => Value };

/**
 * A module made of named children and a forward function — PyTorch's `nn.Module` subclass in one call.
 *
 * @example
 * const block = composite('ResidualBlock', { conv1: conv2d(16, 16, 3, { padding: 1 }) }, (m, x, ctx) => relu(ctx, m.conv1(x)));
 */
export function composite<C extends Record<string, Module>>(
  type: string,
  children: C,
  forward: (m: Children<C>, x: Value, ctx: ModelContext) => Value,
): Module & { children: C } {
  return {
    type,
    children,
    forward(ctx, x) {
      const bound = Object.fromEntries(
        Object.entries(children).map(([name, child]) => [name, (input: Value) => ctx.call(name, child, input)]),
      ) as Children<C>;
      return forward(bound, x, ctx);
    },
  };
}
