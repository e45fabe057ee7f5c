/** Output size of a convolution or pooling window along one axis (PyTorch's floor formula, ceil_mode=False). */
export function windowOutputSize(size: number, kernel: number, stride: number, padding: number, dilation = 1): number {
  const out = Math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
  if (out < 1) {
    throw new Error(
      `window of size ${kernel} (stride ${stride}, padding ${padding}, dilation ${dilation}) does not fit input size ${size}`,
    );
  }
  return out;
}

export function expectRank(shape: number[], rank: number, layer: string): void {
  if (shape.length !== rank) {
    throw new Error(`${layer} expects ${rank}-d examples (per-example shape), got [${shape.join(', ')}]`);
  }
}
