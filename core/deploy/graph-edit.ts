/** Small helpers for rewriting a decoded ModelProto's graph in place. */
import type { GraphProto, NodeProto, TensorProto } from '../../onnx/schema.ts';
import { fromTensorProto, type Tensor, toTensorProto } from '../../onnx/tensor.ts';

export class GraphEditor {
  constructor(readonly graph: GraphProto) {
    graph.node ??= [];
    graph.initializer ??= [];
  }

  get nodes(): NodeProto[] {
    return this.graph.node as NodeProto[];
  }

  /** Nodes that read `value`. */
  consumers(value: string): NodeProto[] {
    return this.nodes.filter((n) => n.input.includes(value));
  }

  producer(value: string): NodeProto | undefined {
    return this.nodes.find((n) => n.output.includes(value));
  }

  isGraphOutput(value: string): boolean {
    return (this.graph.output ?? []).some((o) => o.name === value);
  }

  private initializerProto(name: string): TensorProto | undefined {
    return (this.graph.initializer as TensorProto[]).find((t) => t.name === name);
  }

  /** A float initializer's values, or undefined when `name` is not a float initializer. */
  floatInitializer(name: string | undefined): Tensor | undefined {
    if (!name) return undefined;
    const proto = this.initializerProto(name);
    if (!proto) return undefined;
    const tensor = fromTensorProto(proto);
    return tensor.dataType === 'FLOAT' ? tensor : undefined;
  }

  setInitializer(name: string, tensor: Tensor): void {
    const list = this.graph.initializer as TensorProto[];
    const index = list.findIndex((t) => t.name === name);
    const proto = toTensorProto(name, tensor);
    if (index >= 0) list[index] = proto;
    else list.push(proto);
  }

  /** Drop initializers no node reads any more. */
  pruneInitializers(): void {
    const used = new Set(this.nodes.flatMap((n) => n.input));
    this.graph.initializer = (this.graph.initializer as TensorProto[]).filter((t) => used.has(t.name ?? ''));
  }

  removeNode(node: NodeProto): void {
    this.graph.node = this.nodes.filter((n) => n !== node);
  }

  /** Make every reader of `from` read `to` instead. */
  rewire(from: string, to: string): void {
    for (const n of this.nodes) n.input = n.input.map((i) => (i === from ? to : i));
  }
}
