/** Conv geometries for kernel tests: the output size a Conv would give for an input, kernel and window. */
import type { ConvGeometry } from '../../core/autodiff/rules/conv-weight-gradient.ts';

export function convGeometry(
  input: [number, number, number],
  m: number,
  kernel: [number, number],
  { strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1] }: Partial<ConvGeometry> = {},
): ConvGeometry {
  const out = (axis: 0 | 1) =>
    Math.floor(
      ((input[axis + 1] as number) +
        (pads[axis] as number) +
        (pads[axis + 2] as number) -
        (dilations[axis] as number) * (kernel[axis] - 1) -
        1) /
        (strides[axis] as number),
    ) + 1;
  return {
    input,
    output: [m, out(0), out(1)],
    kernel,
    strides: strides as [number, number],
    pads: pads as [number, number, number, number],
    dilations: dilations as [number, number],
  };
}
