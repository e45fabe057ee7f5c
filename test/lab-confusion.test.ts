/** The failure lab's arithmetic (web-demo/src/lab/confusion.ts): counts, accuracy and per-digit recall. */
import { describe, expect, it } from 'vitest';
import { argmax } from '../core/softmax.ts';
import { accuracy, confusionMatrix, correct, perClassAccuracy, total } from '../web-demo/src/lab/confusion.ts';

describe('confusion matrix', () => {
  const labels = [0, 0, 1, 1, 1, 9];
  const predictions = [0, 6, 1, 1, 7, 9];
  const c = confusionMatrix(labels, predictions);

  it('counts [true][read], every image once', () => {
    expect(c).toHaveLength(10);
    expect(c[0]?.[0]).toBe(1);
    expect(c[0]?.[6]).toBe(1);
    expect(c[1]?.[1]).toBe(2);
    expect(c[1]?.[7]).toBe(1);
    expect(total(c)).toBe(6);
    expect(correct(c)).toBe(4);
  });

  it('accuracy overall and per true digit (a digit with no images counts 0%, not NaN)', () => {
    expect(accuracy(c)).toBeCloseTo(400 / 6, 10);
    const perClass = perClassAccuracy(c);
    expect(perClass[0]).toBe(50);
    expect(perClass[1]).toBeCloseTo(200 / 3, 10);
    expect(perClass[9]).toBe(100);
    expect(perClass[5]).toBe(0);
  });

  it('argmax takes the first of equal maxima', () => {
    expect(argmax([0.1, 0.7, 0.7, 0.2])).toBe(1);
    expect(argmax(new Float32Array([-3, -1, -2]))).toBe(1);
  });
});
