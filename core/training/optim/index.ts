export { adam, adamw } from './adam.ts';
export type { NativeUpdate, Optimizer } from './optimizer.ts';
export { sgd } from './sgd.ts';
