/**
 * Typed node attributes. ONNX tells an INT from a FLOAT attribute and ORT rejects the wrong one
 * (e.g. `alpha=1` written as INT), while a JS number can't tell — so every value says its kind.
 *
 * @example
 * { kernel_shape: ints([5, 5]), epsilon: float(1e-5), auto_pad: str('NOTSET') }
 */

import { type AttributeProto, AttributeType } from './schema.ts';
import { type Tensor, toTensorProto } from './tensor.ts';

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: Tensor };

export type Attributes = Record<string, AttributeValue>;

export const int = (value: number): AttributeValue => {
  if (!Number.isInteger(value)) throw new Error(`int attribute got a non-integer ${value}`);
  return { kind: 'int', value };
};
export const float = (value: number): AttributeValue => ({ kind: 'float', value });
export const ints = (value: number[]): AttributeValue => {
  for (const v of value) if (!Number.isInteger(v)) throw new Error(`ints attribute got a non-integer ${v}`);
  return { kind: 'ints', value };
};
export const floats = (value: number[]): AttributeValue => ({ kind: 'floats', value });
export const str = (value: string): AttributeValue => ({ kind: 'string', value });
export const tensorAttr = (value: Tensor): AttributeValue => ({ kind: 'tensor', value });

/** Encode one attribute as an AttributeProto. */
export function toAttributeProto(name: string, attr: AttributeValue): AttributeProto {
  switch (attr.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: attr.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: attr.value };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: attr.value };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: attr.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attr.value) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: toTensorProto(name, attr.value) };
  }
}
