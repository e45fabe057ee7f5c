/**
 * Softmax cross-entropy, mean over the batch, with optional label smoothing (PyTorch's
 * CrossEntropyLoss(label_smoothing=ε): targets q = (1 − ε)·onehot + ε/C), and its gradient
 * dLogits = (softmax − q)/N — written directly, it is both cheaper and stabler than differentiating
 * LogSoftmax. Also counts correct predictions (argmax = label).
 */
import { int, ints } from '../../onnx/attributes.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import { floatTensor, int64Tensor } from '../../onnx/tensor.ts';

export interface LossValues {
  loss: string;
  correct: string;
  dLogits: string;
}

export function softmaxCrossEntropy(
  g: GraphBuilder,
  logits: string,
  labels: string,
  {
    classes,
    labelSmoothing = 0,
    plainLogSoftmax = false,
  }: { classes: number; labelSmoothing?: number; plainLogSoftmax?: boolean },
): LossValues {
  if (!(labelSmoothing >= 0 && labelSmoothing < 1))
    throw new Error(`label smoothing must be in [0, 1), got ${labelSmoothing}`);
  const logProb = plainLogSoftmax ? logSoftmaxOfPlainOps(g, logits) : g.op('LogSoftmax', [logits], { axis: int(1) });
  const oneHot = g.op(
    'OneHot',
    [labels, g.constant(int64Tensor([], [classes]), 'classes'), g.constant(floatTensor([2], [0, 1]), 'off_on')],
    {
      axis: int(-1),
    },
  );
  const target =
    labelSmoothing === 0
      ? oneHot
      : g.op('Add', [
          g.op('Mul', [oneHot, g.constant(floatTensor([], [1 - labelSmoothing]), 'keep')]),
          g.constant(floatTensor([], [labelSmoothing / classes]), 'spread'),
        ]);
  const perExample = g.op('ReduceSum', [g.op('Mul', [target, logProb]), g.constant(int64Tensor([1], [1]), 'axes')], {
    keepdims: int(0),
  });
  const loss = g.op('Neg', [g.op('ReduceMean', [perExample], { keepdims: int(0) })]);

  const batch = g.op('Cast', [g.op('Shape', [logits], { start: int(0), end: int(1) })], { to: int(1) });
  const dLogits = g.op('Div', [g.op('Sub', [g.op('Exp', [logProb]), target]), batch]);

  const predicted = g.op('ArgMax', [logits], { axis: int(1), keepdims: int(0) });
  const hits = g.op('Cast', [g.op('Equal', [predicted, labels])], { to: int(1) });
  const correct = g.op('ReduceSum', [hits], { keepdims: int(0) });
  return { loss, correct, dLogits };
}

/** log softmax over axis 1 as x − max − log Σ exp(x − max), from ops every provider runs (WebGPU has no LogSoftmax). */
function logSoftmaxOfPlainOps(g: GraphBuilder, x: string): string {
  const shifted = g.op('Sub', [x, g.op('ReduceMax', [x], { axes: ints([1]), keepdims: int(1) })]);
  const sum = g.op('ReduceSum', [g.op('Exp', [shifted]), g.constant(int64Tensor([1], [1]), 'axes')], {
    keepdims: int(1),
  });
  return g.op('Sub', [shifted, g.op('Log', [sum])]);
}
