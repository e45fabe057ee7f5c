export { adam, adamw } from './adam.ts';
export type { Optimizer } from './optimizer.ts';
export { sgd } from './sgd.ts';
