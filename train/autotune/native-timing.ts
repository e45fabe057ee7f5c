/**
 * Native Conv input gradients, timed where they run: the model's whole gradient step as the native
 * trainer runs it (Conv weight gradients outside the graph), cut into segments around the native chain
 * (node/segmented-session.ts) or not. What a native dX saves in kernel time, each cut gives back in a
 * session run and its outputs' copies into fresh JS buffers (about 0.2–0.6 ms per MB on the 2-vCPU EPYC),
 * so only the whole step can tell.
 */
import type { GradientRule } from '../../core/autodiff/rule.ts';
import type { ConvGeometry } from '../../core/autodiff/rules/conv-weight-gradient.ts';
import type { NativeChoices } from '../../core/autodiff/rules/native.ts';
import type { MaxPoolGeometry } from '../../core/autodiff/rules/pooling.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { buildGradientGraph } from '../../core/training/training-graph.ts';
import { nativeKernelsBuild } from '../../node/native-kernels.ts';
import { createGradientRunner, encodeSegmentPlan, type GradientRunner } from '../../node/segmented-session.ts';
import { encodeModel } from '../../onnx/codec.ts';
import { stepFeeds } from './step-timing.ts';
import { convTimingKey, timingKey, typicalRunTimes } from './timing.ts';

export const NATIVE_OR_ORT = ['ort', 'native'] as const;
export type NativeOrOrt = (typeof NATIVE_OR_ORT)[number];

/** The addon's build: a rebuilt addon's kernels are timed again instead of a stale pick being trusted. */
const nativeBuild = () => [`native build ${nativeKernelsBuild() ?? 'absent'}`];

/** The cache keys: where the native step may start a chain, and its geometry. */
export function nativeConvInputKey(geo: ConvGeometry, batch: number): string {
  return convTimingKey('conv-input-gradient in native step', NATIVE_OR_ORT, geo, batch, nativeBuild());
}

export function nativeMaxPoolKey(geo: MaxPoolGeometry, batch: number): string {
  const { input, kernel, strides, pads } = geo;
  const geometry = { in: input, kernel, strides, pads };
  return timingKey('max-pool-gradient in native step', NATIVE_OR_ORT, batch, geometry, nativeBuild());
}

/**
 * Typical ms per gradient step of `module` with each candidate's native choices; 'same' when both build the
 * same step (a node whose gradient a native chain above it already reaches runs natively either way).
 */
export async function timeNativeChoices(
  module: Module,
  batch: number,
  rules: Record<string, GradientRule>,
  candidates: (choice: NativeOrOrt) => NativeChoices,
): Promise<Map<NativeOrOrt, number> | 'same'> {
  const graphs = NATIVE_OR_ORT.map((choice) =>
    buildGradientGraph(module, { rules, externalConvWeights: () => true, nativeGradients: candidates(choice) }),
  );
  const encoded = graphs.map((g) => encodeModel(g.model));
  const [ort, native] = encoded;
  if (ort && native && Buffer.compare(ort, native) === 0) return 'same';
  const feeds = stepFeeds(graphs[0] as (typeof graphs)[number], batch);
  const runners = new Map<NativeOrOrt, GradientRunner>();
  try {
    for (const [i, choice] of NATIVE_OR_ORT.entries()) {
      const graph = graphs[i] as (typeof graphs)[number];
      runners.set(
        choice,
        await createGradientRunner(graph.segments ? encodeSegmentPlan(graph.segments) : (encoded[i] as Uint8Array)),
      );
    }
    return await typicalRunTimes(runners, feeds);
  } finally {
    await Promise.all([...runners.values()].map((r) => r.release()));
  }
}
