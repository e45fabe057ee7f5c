/**
 * A typed ONNX graph builder: add inputs, initializers and nodes, get a ModelProto.
 *
 * @example
 * const g = new GraphBuilder('tiny');
 * const x = g.input('input', 'FLOAT', ['N', 4]);
 * const w = g.initializer('w', floatTensor([4, 2], new Float32Array(8)));
 * g.output(g.op('MatMul', [x, w]), 'FLOAT', ['N', 2], 'logits');
 * const model = g.toModel({ metadata: { author: 'me' } });
 */
import { type Attributes, toAttributeProto } from './attributes.ts';
import type { DataTypeName, ModelProto, NodeProto, TensorProto, ValueInfoProto } from './schema.ts';
import { DataType } from './schema.ts';
import { type Tensor, toTensorProto } from './tensor.ts';

/** A dimension: a fixed size, or a name for a dynamic one (e.g. 'N' for the batch). */
export type Dim = number | string;

export const OPSET = 17;
/** IR version 8 is the one that goes with opset 17. */
export const IR_VERSION = 8;
export const PRODUCER_NAME = 'mnist-onnx-cnn';
/** The project's version (package.json's; a test keeps them equal): ONNX files' producer_version and the server's. */
export const PRODUCER_VERSION = '0.1.0';

export interface NodeOptions {
  /** Output names, or how many fresh ones to make (default 1). */
  outputs?: string[] | number;
  /** Node name; defaults to a unique `<OpType>_<n>`. */
  name?: string;
  domain?: string;
}

export interface ModelOptions {
  opset?: number;
  irVersion?: number;
  docString?: string;
  metadata?: Record<string, string>;
}

function valueInfo(name: string, dataType: DataTypeName, shape: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DataType[dataType],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  readonly initializers: TensorProto[] = [];
  /** Known shapes of values (inputs, initializers, and whatever the emitter records) — gradient rules need them. */
  readonly shapes = new Map<string, Dim[]>();
  private readonly used = new Set<string>();
  /** Operator sets beyond the default domain's that the graph's nodes use (`importDomain`). */
  private readonly domains = new Map<string, number>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A name not used yet in this graph, derived from `hint`. */
  uniqueName(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`value name '${name}' is already used in graph '${this.name}'`);
    this.used.add(name);
    return name;
  }

  /** Declare a graph input; returns its value name. */
  input(name: string, dataType: DataTypeName, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dataType, shape));
    this.shapes.set(name, [...shape]);
    return name;
  }

  /**
   * Declare `value` as a graph output; with `rename`, it gets that public name. A value a node of this graph
   * makes is renamed where it is made (and wherever it is read; later nodes and `shapeOf` take the old name
   * too), so the output is written in place: an Identity per output was a whole copy per run (ORT keeps an
   * Identity that makes a graph output; 6% of an mlp training step's kernel time). Graph inputs, initializers
   * and values already output once still get an Identity.
   */
  output(value: string, dataType: DataTypeName, shape: readonly Dim[], rename?: string): string {
    const current = this.resolve(value);
    let name = current;
    if (rename && rename !== current)
      name = this.renamable(current)
        ? this.renameValue(current, rename)
        : this.op('Identity', [current], {}, { outputs: [rename] });
    this.outputs.push(valueInfo(name, dataType, shape));
    return name;
  }

  /** Old names of values renamed by `output`, to their public names. */
  private readonly renamed = new Map<string, string>();

  private resolve(name: string): string {
    return this.renamed.get(name) ?? name;
  }

  /** Made by a node here (so not a graph input or initializer) and not yet a graph output. */
  private renamable(value: string): boolean {
    return this.nodes.some((n) => n.output.includes(value)) && !this.outputs.some((o) => o.name === value);
  }

  private renameValue(from: string, to: string): string {
    this.claim(to);
    for (const node of this.nodes) {
      node.input = node.input.map((i) => (i === from ? to : i));
      node.output = node.output.map((o) => (o === from ? to : o));
    }
    const shape = this.shapes.get(from);
    if (shape) this.shapes.set(to, shape);
    // `from` is never itself a public name here (those are graph outputs already), so no alias chains.
    this.renamed.set(from, to);
    return to;
  }

  /** A named constant tensor stored in the file (weights, shapes, axes). */
  initializer(name: string, tensor: Tensor): string {
    this.initializers.push(toTensorProto(this.claim(name), tensor));
    this.shapes.set(name, [...tensor.dims]);
    return name;
  }

  /** An initializer with a fresh name derived from `hint`. */
  constant(tensor: Tensor, hint = 'const'): string {
    const name = this.uniqueName(hint);
    this.initializers.push(toTensorProto(name, tensor));
    this.shapes.set(name, [...tensor.dims]);
    return name;
  }

  /** The recorded shape of a value; fails naming the value when none was recorded. */
  shapeOf(name: string): Dim[] {
    const shape = this.shapes.get(name) ?? this.shapes.get(this.resolve(name));
    if (!shape) throw new Error(`no shape recorded for value '${name}' in graph '${this.name}'`);
    return shape;
  }

  /** Add a node; returns its output names. An empty input name means "optional input left out". */
  node(opType: string, inputs: string[], attributes: Attributes = {}, options: NodeOptions = {}): string[] {
    const outputs =
      typeof options.outputs === 'object'
        ? options.outputs.map((o) => (o === '' ? o : this.claim(o)))
        : Array.from({ length: options.outputs ?? 1 }, (_, i) =>
            this.uniqueName(`${opType}_${this.nodes.length}_out${i}`),
          );
    const node: NodeProto = {
      op_type: opType,
      name: options.name ?? this.uniqueName(`${opType}_${this.nodes.length}`),
      input: inputs.map((i) => this.resolve(i)),
      output: outputs,
      attribute: Object.entries(attributes).map(([k, v]) => toAttributeProto(k, v)),
    };
    if (options.domain) node.domain = options.domain;
    this.nodes.push(node);
    return outputs;
  }

  /** A single-output node; returns the output name. */
  op(opType: string, inputs: string[], attributes: Attributes = {}, options: NodeOptions = {}): string {
    const [out] = this.node(opType, inputs, attributes, options);
    return out as string;
  }

  /** Declare an operator set the graph's nodes use besides the default domain's (e.g. ORT's com.microsoft.nchwc). */
  importDomain(domain: string, version: number): void {
    this.domains.set(domain, version);
  }

  /** The finished ModelProto (opset 17, IR 8 unless told otherwise). */
  toModel(options: ModelOptions = {}): ModelProto {
    const model: ModelProto = {
      ir_version: options.irVersion ?? IR_VERSION,
      opset_import: [
        { domain: '', version: options.opset ?? OPSET },
        ...[...this.domains].map(([domain, version]) => ({ domain, version })),
      ],
      producer_name: PRODUCER_NAME,
      producer_version: PRODUCER_VERSION,
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    if (options.docString) model.doc_string = options.docString;
    return model;
  }
}
