/** Class labels as the training graph takes them: int64, each checked to be a class. */
export function toLabels(labels: ArrayLike<number>, classes: number): BigInt64Array {
  const out = new BigInt64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    // ORT's OneHot would silently give an all-zero target for an out-of-range label.
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new Error(`label ${label} at ${i} is not a class in 0..${classes - 1}`);
    out[i] = BigInt(label);
  }
  return out;
}
