/**
 * The native optimizer update (native/optimizer_update.cc) against PyTorch's update rules written out in
 * float64 here, and against the update graph ORT runs (buildUpdateGraph): SGD plain, with momentum, Nesterov
 * and weight decay, Adam with L2 and AdamW with decoupled decay, over several steps, one gradient or the
 * weighted parts of data-parallel participants. Skipped where the addon isn't built.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { ParamSpec } from '../core/model/layers/index.ts';
import { Rng } from '../core/random.ts';
import { adam, adamw, type Optimizer, sgd } from '../core/training/optim/index.ts';
import {
  buildUpdateGraph,
  gradName,
  gradPartName,
  LR_NAME,
  nextName,
  SHARES_NAME,
  STEP_NAME,
  stateName,
} from '../core/training/training-graph.ts';
import { createSession } from '../node/execution.ts';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';
import { encodeModel } from '../onnx/codec.ts';

const kernels = nativeKernels();
const update = kernels?.optimizerUpdate;

/** PyTorch's step for one element, in float64 (torch/optim/sgd.py, adam.py, adamw.py; dampening 0, amsgrad off). */
function referenceStep(o: Optimizer, t: number, lr: number, p: number, g: number, s: number[]): number {
  const u = o.native;
  if (u.kind === 'sgd') {
    let d = g + u.weightDecay * p;
    if (u.momentum > 0) {
      s[0] = t === 1 ? d : u.momentum * (s[0] as number) + d; // torch: the first step's buffer is the gradient
      d = u.nesterov ? d + u.momentum * (s[0] as number) : (s[0] as number);
    }
    return p - lr * d;
  }
  let d = g;
  if (u.decoupled) p *= 1 - lr * u.weightDecay;
  else d += u.weightDecay * p;
  s[0] = u.beta1 * (s[0] as number) + (1 - u.beta1) * d;
  s[1] = u.beta2 * (s[1] as number) + (1 - u.beta2) * d * d;
  const denom = Math.sqrt(s[1] as number) / Math.sqrt(1 - u.beta2 ** t) + u.eps;
  return p - (lr / (1 - u.beta1 ** t)) * ((s[0] as number) / denom);
}

const OPTIMIZERS: [string, Optimizer][] = [
  ['sgd', sgd()],
  ['sgd, momentum 0.9', sgd({ momentum: 0.9 })],
  ['sgd, Nesterov, weight decay', sgd({ momentum: 0.8, nesterov: true, weightDecay: 0.01 })],
  ['adam', adam()],
  ['adam, L2 weight decay', adam({ weightDecay: 0.02, betas: [0.8, 0.99] })],
  ['adamw, decoupled decay', adamw({ weightDecay: 0.05, eps: 1e-6 })],
];

const SIZE = 1037; // two whole 512-chunks and a part one

describe.skipIf(!update)(`native optimizer update (${nativeKernelsStatus()})`, () => {
  const run = update as NonNullable<typeof update>;

  for (const [label, optimizer] of OPTIMIZERS) {
    for (const parts of [1, 3]) {
      it(`${label}, ${parts} gradient part${parts > 1 ? 's' : ''}: four steps as PyTorch's rule and ORT's update graph`, async () => {
        const rng = new Rng(11);
        const random = (scale: number) => Float32Array.from({ length: SIZE }, () => rng.uniform(-scale, scale));
        const param: ParamSpec = { name: 'w', shape: [SIZE], init: { kind: 'constant', value: 0 }, trainable: true };
        const graph = buildUpdateGraph([param], optimizer, { sources: parts });
        const { session } = await createSession(encodeModel(graph.model), { device: 'cpu', threads: 1 });
        try {
          const shares = parts > 1 ? Float32Array.of(0.5, 0.125, 0.375) : null;
          const start = random(1);
          const native = { param: start.slice(), states: optimizer.slots.map(() => new Float32Array(SIZE)) };
          let graphParam: Float32Array = start.slice();
          let graphStates: Float32Array[] = optimizer.slots.map(() => new Float32Array(SIZE));
          const reference = { param: Float64Array.from(start), states: [...start].map(() => [0, 0]) };
          for (let t = 1; t <= 4; t++) {
            const lr = 0.1 / t;
            const gradients = Array.from({ length: parts }, () => random(2));
            run(optimizer.native, lr, t, native.param, native.states, gradients, shares);

            const feeds: Record<string, ort.Tensor> = {
              [LR_NAME]: new ort.Tensor('float32', Float32Array.of(lr), []),
              w: new ort.Tensor('float32', graphParam, [SIZE]),
            };
            if (optimizer.usesStep) feeds[STEP_NAME] = new ort.Tensor('float32', Float32Array.of(t), []);
            if (shares) feeds[SHARES_NAME] = new ort.Tensor('float32', shares, [parts]);
            gradients.forEach((g, j) => {
              feeds[parts > 1 ? gradPartName('w', j) : gradName('w')] = new ort.Tensor('float32', g, [SIZE]);
            });
            optimizer.slots.forEach((slot, i) => {
              feeds[stateName('w', slot)] = new ort.Tensor('float32', graphStates[i] as Float32Array, [SIZE]);
            });
            const out = await session.run(feeds);
            graphParam = out[nextName('w')]?.data as Float32Array;
            graphStates = optimizer.slots.map((slot) => out[nextName(stateName('w', slot))]?.data as Float32Array);

            for (let i = 0; i < SIZE; i++) {
              const g = gradients.reduce(
                (sum, part, j) => sum + (shares ? (shares[j] as number) : 1) * (part[i] as number),
                0,
              );
              reference.param[i] = referenceStep(
                optimizer,
                t,
                lr,
                reference.param[i] as number,
                g,
                reference.states[i] as number[],
              );
            }
          }
          let fromReference = 0;
          let fromGraph = 0;
          for (let i = 0; i < SIZE; i++) {
            const p = native.param[i] as number;
            fromReference = Math.max(fromReference, Math.abs(p - (reference.param[i] as number)));
            fromGraph = Math.max(fromGraph, Math.abs(p - (graphParam[i] as number)));
          }
          // Float32 against float64: a few ulps of values ~1 per step; against ORT: the same operations, rounding apart.
          // Float32 against float64: a few ulps of values ~1 after four steps. ORT's graph is the further
          // from float64 of the two (Adam's bias corrections: up to 1.5e-6 here), so it gets more room.
          expect(fromReference).toBeLessThan(1e-6);
          expect(fromGraph).toBeLessThan(4e-6);
          optimizer.slots.forEach((_, s) => {
            const a = native.states[s] as Float32Array;
            const b = graphStates[s] as Float32Array;
            for (let i = 0; i < SIZE; i++) expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThan(4e-6);
          });
        } finally {
          await session.release();
        }
      });
    }
  }

  it('refuses arguments that do not fit, with a TypeError instead of reading past an array', () => {
    const p = new Float32Array(8);
    const short = new Float32Array(7);
    const momentum = sgd({ momentum: 0.9 }).native;
    expect(() => run(momentum, 0.1, 1, p, [short], [new Float32Array(8)], null)).toThrow(TypeError);
    expect(() => run(momentum, 0.1, 1, p, [], [new Float32Array(8)], null)).toThrow(/one state/);
    expect(() => run(momentum, 0.1, 1, p, [new Float32Array(8)], [short], null)).toThrow(TypeError);
    expect(() => run(momentum, 0.1, 1, p, [new Float32Array(8)], [p, p], null)).toThrow(/shares/);
    expect(() => run(momentum, 0.1, 1, p, [new Float32Array(8)], [p, p], Float32Array.of(1))).toThrow(/shares/);
    expect(() => run(adam().native, 0.1, 1, p, [new Float32Array(8)], [p], null)).toThrow(/two states/);
    expect(() => run(momentum, 0.1, 1, p, [new Float32Array(8)], [], null)).toThrow(TypeError);
  });

  it('takes no data pointer before every array element is fetched: a getter that detaches an earlier part is refused', () => {
    const buffer = new ArrayBuffer(4 * 1024);
    const parts: Float32Array[] = [new Float32Array(buffer).fill(1)];
    Object.defineProperty(parts, 1, {
      enumerable: true,
      get() {
        structuredClone(buffer, { transfer: [buffer] }); // frees parts[0]'s memory
        return new Float32Array(1024);
      },
    });
    const param = new Float32Array(1024);
    expect(() => run(sgd().native, 1, 1, param, [], parts, Float32Array.of(1, 1))).toThrow(TypeError);
    expect(buffer.byteLength).toBe(0);
    expect(param[0]).toBe(0); // nothing was written from the freed part
  });
});
