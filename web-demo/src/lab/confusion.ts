/** A model's answers on labelled images as a confusion matrix, and what it says per class. Pure, no DOM. */
import { NUM_CLASSES } from '../../../core/contract.ts';

/** counts[label][predicted]: how often digit `label` was read as `predicted`. */
export type Confusion = number[][];

export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>): Confusion {
  const counts = Array.from({ length: NUM_CLASSES }, () => new Array<number>(NUM_CLASSES).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const row = counts[labels[i] as number] as number[];
    const predicted = predictions[i] as number;
    row[predicted] = (row[predicted] as number) + 1;
  }
  return counts;
}

export const total = (c: Confusion) => c.flat().reduce((a, b) => a + b, 0);
export const correct = (c: Confusion) => c.reduce((sum, row, d) => sum + (row[d] as number), 0);

/** Accuracy (%) over all images. */
export const accuracy = (c: Confusion) => (100 * correct(c)) / Math.max(1, total(c));

/** Per true digit: the share (%) of its images read right (recall). */
export const perClassAccuracy = (c: Confusion) =>
  c.map(
    (row, d) =>
      (100 * (row[d] as number)) /
      Math.max(
        1,
        row.reduce((a, b) => a + b, 0),
      ),
  );
