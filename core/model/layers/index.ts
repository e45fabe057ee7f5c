/** The layer library: `nn.*`-style modules and `F.*`-style functional ops. */
export { batchNorm2d } from './batchnorm2d.ts';
export { type ConvBnReluOptions, convBnRelu } from './conv-bn-relu.ts';
export { conv2d } from './conv2d.ts';
export { dropout } from './dropout.ts';
export * as F from './functional.ts';
export { linear } from './linear.ts';
export {
  type Children,
  composite,
  type LayerRow,
  ModelContext,
  type Module,
  type ParamSpec,
  type Value,
} from './module.ts';
export { avgPool2dLayer, flattenLayer, maxPool2dLayer, reluLayer, scaleLayer, sequential } from './simple-modules.ts';
