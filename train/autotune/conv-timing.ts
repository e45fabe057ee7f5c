import { GraphBuilder } from '../../export/onnx/builder.ts';
import { encodeModel } from '../../export/onnx/codec.ts';
import {
  CONV_WEIGHT_GRADIENTS,
  type ConvGeometry,
  type ConvWeightGradient,
  emitConvWeightGradient,
} from '../autodiff/rules/conv-weight-gradient.ts';
import { randomTensors, timingKey, typicalTimes } from './timing.ts';

/** The cache key: everything the timing depends on. */
export function convKey(geo: ConvGeometry, batch: number): string {
  const { input, output, kernel, strides, pads, dilations } = geo;
  return timingKey('conv-weight-gradient', CONV_WEIGHT_GRADIENTS, batch, {
    in: input,
    out: output,
    kernel,
    strides,
    pads,
    dilations,
  });
}

/** Median milliseconds per run of each formulation. */
export async function timeConvWeightGradients(
  geo: ConvGeometry,
  batch: number,
): Promise<Map<ConvWeightGradient, number>> {
  const random = randomTensors(1);
  const feeds = { x: random([batch, ...geo.input]), dy: random([batch, ...geo.output]) };
  const models = new Map<ConvWeightGradient, Uint8Array>();
  for (const formulation of CONV_WEIGHT_GRADIENTS) {
    const g = new GraphBuilder(`conv_weight_gradient_${formulation}`);
    const x = g.input('x', 'FLOAT', [batch, ...geo.input]);
    const dy = g.input('dy', 'FLOAT', [batch, ...geo.output]);
    const dw = emitConvWeightGradient(g, x, dy, geo, formulation);
    g.output(dw, 'FLOAT', [geo.output[0], geo.input[0], ...geo.kernel], 'dw');
    models.set(formulation, encodeModel(g.toModel()));
  }
  return typicalTimes(models, feeds);
}
