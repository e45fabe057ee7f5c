/** Reading a decoded node's attributes, with the op's default when the attribute is absent. */
import { toNumber } from './numbers.ts';
import type { AttributeProto, NodeProto } from './schema.ts';

function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a?.i === undefined ? fallback : toNumber(a.i);
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  return attribute(node, name)?.f ?? fallback;
}

export function attrInts(node: NodeProto, name: string, fallback: number[]): number[] {
  const a = attribute(node, name);
  return a?.ints && a.ints.length > 0 ? a.ints.map(toNumber) : fallback;
}
