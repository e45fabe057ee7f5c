/**
 * Runs a gradient graph that was cut at its native nodes (core/training/segments.ts): each ORT segment in
 * its own 1-thread session, each native node by its kernel (native-kernels.ts) in between, values passed
 * along as the tensors they are (no copies beyond ORT's own outputs). A plain graph runs in one session
 * behind the same interface, so the trainer holds one `GradientRunner` either way.
 */
import * as ort from 'onnxruntime-node';
import {
  AVG_POOL_GRADIENT,
  BATCH_NORM_INPUT_GRADIENT,
  BATCH_NORM_SCALE_GRADIENT,
  BIAS_GRADIENT,
  CHANNEL_SLICE,
  CONV_INPUT_GRADIENT,
  GRADIENT_PRODUCT,
  GRADIENT_SUM,
  MAX_POOL_GRADIENT,
  NCHWC_FILTER,
  nativeConvGeometry,
  RELU_GRADIENT,
} from '../core/autodiff/native-ops.ts';
import { nchwcFilterMap, nchwcFilterShape } from '../core/training/nchwc-convs.ts';
import type { NativeStep, SegmentPlan } from '../core/training/segments.ts';
import { encodeModel } from '../onnx/codec.ts';
import { attrFloat, attrInt, attrInts } from '../onnx/read-attributes.ts';
import { sizeOf } from '../onnx/tensor.ts';
import { createSession } from './execution.ts';
import { type NativeKernels, nativeKernels, nativeKernelsStatus } from './native-kernels.ts';

/** A SegmentPlan with its segments encoded (structured-cloneable: it crosses to worker threads). */
export interface EncodedSegmentPlan {
  steps: ({ kind: 'graph'; model: Uint8Array; inputs: string[]; outputs: string[] } | NativeStep)[];
  outputs: string[];
}

export function encodeSegmentPlan(plan: SegmentPlan): EncodedSegmentPlan {
  return {
    steps: plan.steps.map((s) => (s.kind === 'graph' ? { ...s, model: encodeModel(s.model) } : s)),
    outputs: plan.outputs,
  };
}

/** Told each step's index in the plan and its milliseconds (the step profiler's hook). */
export type StepTimer = (index: number, ms: number) => void;

export interface GradientRunner {
  /** The graph's outputs; those a native node made live in buffers the next run overwrites. */
  run(feeds: Record<string, ort.Tensor>, onStep?: StepTimer): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/** One CPU session of `threads` intra-op threads for a plain graph, or the segments and kernels of a cut one (as many threads). */
export async function createGradientRunner(
  graph: Uint8Array | EncodedSegmentPlan,
  threads = 1,
): Promise<GradientRunner> {
  if (graph instanceof Uint8Array) {
    const { session } = await createSession(graph, { device: 'cpu', threads });
    return {
      async run(feeds, onStep) {
        const start = onStep ? performance.now() : 0;
        const outputs = await session.run(feeds);
        onStep?.(0, performance.now() - start);
        return outputs as Record<string, ort.Tensor>;
      },
      release: () => session.release(),
    };
  }
  return SegmentedRunner.create(graph, threads);
}

type Step =
  | { kind: 'graph'; session: ort.InferenceSession; inputs: string[] }
  | { kind: 'native'; run: (values: Map<string, ort.Tensor>) => void };

class SegmentedRunner implements GradientRunner {
  private constructor(
    private readonly steps: Step[],
    private readonly outputs: string[],
  ) {}

  static async create(plan: EncodedSegmentPlan, threads = 1): Promise<SegmentedRunner> {
    const kernels = nativeKernels();
    if (!kernels) throw new Error(nativeKernelsStatus());
    const steps: Step[] = [];
    try {
      for (const s of plan.steps) {
        if (s.kind === 'native') steps.push({ kind: 'native', run: nativeStep(s, kernels, threads) });
        else {
          const { session } = await createSession(s.model, { device: 'cpu', threads });
          steps.push({ kind: 'graph', session, inputs: s.inputs });
        }
      }
    } catch (error) {
      await Promise.all(steps.map((s) => (s.kind === 'graph' ? s.session.release() : undefined)));
      throw error;
    }
    return new SegmentedRunner(steps, plan.outputs);
  }

  async run(feeds: Record<string, ort.Tensor>, onStep?: StepTimer): Promise<Record<string, ort.Tensor>> {
    const values = new Map(Object.entries(feeds));
    for (const [index, step] of this.steps.entries()) {
      const start = onStep ? performance.now() : 0;
      if (step.kind === 'native') step.run(values);
      else {
        const inputs: Record<string, ort.Tensor> = {};
        for (const name of step.inputs) inputs[name] = valueNamed(values, name);
        for (const [name, tensor] of Object.entries(await step.session.run(inputs))) values.set(name, tensor);
      }
      onStep?.(index, performance.now() - start);
    }
    return Object.fromEntries(this.outputs.map((name) => [name, valueNamed(values, name)]));
  }

  async release(): Promise<void> {
    await Promise.all(this.steps.map((s) => (s.kind === 'graph' ? s.session.release() : undefined)));
  }
}

function valueNamed(values: Map<string, ort.Tensor>, name: string): ort.Tensor {
  const value = values.get(name);
  if (!value) throw new Error(`internal: no value '${name}' for the next gradient step`);
  return value;
}

function floats(tensor: ort.Tensor): Float32Array {
  if (!(tensor.data instanceof Float32Array)) throw new Error('internal: a native gradient op got a non-float tensor');
  return tensor.data;
}

/** 1/√(var + ε) per channel, in float32 steps as the ORT rule computes it (Add, Sqrt, Reciprocal). */
function inverseStd(epsilon: number): (variance: Float32Array) => Float32Array {
  let out = new Float32Array(0);
  return (variance) => {
    if (out.length !== variance.length) out = new Float32Array(variance.length);
    for (let i = 0; i < variance.length; i++)
      out[i] = Math.fround(1 / Math.fround(Math.sqrt(Math.fround((variance[i] as number) + Math.fround(epsilon)))));
    return out;
  };
}

/** A native step as a function of the values so far; its output buffer is kept for the next run. */
function nativeStep(
  step: NativeStep,
  kernels: NativeKernels,
  threads: number,
): (values: Map<string, ort.Tensor>) => void {
  const { node } = step;
  const [a, b] = node.input as [string, string | undefined];
  const out = node.output[0] as string;
  let buffer = new Float32Array(0);
  /** The output tensor, of `dims`, in this step's kept buffer. */
  const output = (values: Map<string, ort.Tensor>, dims: readonly number[]) => {
    const size = sizeOf(dims);
    if (buffer.length !== size) buffer = new Float32Array(size);
    values.set(out, new ort.Tensor('float32', buffer, dims));
    return buffer;
  };
  const first = (values: Map<string, ort.Tensor>) => valueNamed(values, a);
  const second = (values: Map<string, ort.Tensor>) => valueNamed(values, b as string);
  switch (node.op_type) {
    case 'Identity':
      return (values) => values.set(out, first(values));
    case CONV_INPUT_GRADIENT: {
      const geo = nativeConvGeometry(node);
      return (values) => {
        const dY = first(values);
        const n = dY.dims[0] as number;
        kernels.convInputGradient(
          floats(dY),
          floats(second(values)),
          output(values, [n, ...geo.input]),
          geo,
          n,
          threads,
        );
      };
    }
    case MAX_POOL_GRADIENT: {
      const k = attrInts(node, 'kernel', [])[0] as number;
      const relu = attrInt(node, 'relu', 0) === 1;
      return (values) => {
        const x = first(values);
        kernels.maxPoolGradient(floats(x), floats(second(values)), output(values, x.dims), x.dims, k, relu);
      };
    }
    case RELU_GRADIENT:
      return (values) => {
        const y = first(values);
        kernels.reluGradient(floats(y), floats(second(values)), output(values, y.dims));
      };
    case GRADIENT_SUM:
      return (values) => {
        const x = first(values);
        kernels.add(floats(x), floats(second(values)), output(values, x.dims));
      };
    case AVG_POOL_GRADIENT: {
      const [kernel, strides, pads, input] = ['kernel', 'strides', 'pads', 'input'].map((a) => attrInts(node, a, []));
      return (values) => {
        const dY = first(values);
        const dims = [dY.dims[0] as number, ...(input as number[])];
        kernels.avgPoolGradient(
          floats(dY),
          output(values, dims),
          dims,
          kernel as number[],
          strides as number[],
          pads as number[],
        );
      };
    }
    case BATCH_NORM_INPUT_GRADIENT:
    case BATCH_NORM_SCALE_GRADIENT: {
      const invStd = inverseStd(attrFloat(node, 'epsilon', 1e-5));
      const statistics = attrInt(node, 'statistics', 1) === 1;
      const input = node.op_type === BATCH_NORM_INPUT_GRADIENT;
      const [x, gamma, mean, variance, dY] = input ? node.input : [node.input[0], '', ...node.input.slice(1)];
      return (values) => {
        const named = (name: string | undefined) => floats(valueNamed(values, name as string));
        const xs = valueNamed(values, x as string);
        const [n, c, ...rest] = xs.dims as number[];
        const dims = [n as number, c as number, sizeOf(rest)] as const;
        const is = invStd(named(variance));
        if (input)
          kernels.batchNormInputGradient(
            named(x),
            named(gamma),
            named(mean),
            is,
            named(dY),
            output(values, xs.dims),
            dims,
            statistics,
            threads,
          );
        else
          kernels.batchNormScaleGradient(
            named(x),
            named(mean),
            is,
            named(dY),
            output(values, [c as number]),
            dims,
            threads,
          );
      };
    }
    case CHANNEL_SLICE: {
      const start = attrInt(node, 'start', 0);
      const end = attrInt(node, 'end', 0);
      return (values) => {
        const x = first(values);
        const [n, c, ...rest] = x.dims as number[];
        const plane = sizeOf(rest);
        const data = floats(x);
        const out = output(values, [n as number, end - start, ...rest]);
        // Each image's channels [start, end) are contiguous: one copy per image.
        for (let i = 0; i < (n as number); i++)
          out.set(
            data.subarray((i * (c as number) + start) * plane, (i * (c as number) + end) * plane),
            i * (end - start) * plane,
          );
      };
    }
    case NCHWC_FILTER: {
      const block = attrInt(node, 'block', 0);
      const blocked = attrInt(node, 'blocked', 0) === 1;
      // Built on the first run, from the weight's shape: where each value goes, and the padded shape.
      let filter: { map: Int32Array; dims: number[] } | undefined;
      return (values) => {
        const w = first(values);
        const dims = w.dims as [number, number, number, number];
        filter ??= { map: nchwcFilterMap(dims, block, blocked), dims: nchwcFilterShape(dims, block, blocked) };
        kernels.gather(floats(w), output(values, filter.dims), filter.map);
      };
    }
    case GRADIENT_PRODUCT:
      return (values) => {
        const x = first(values);
        kernels.multiply(floats(x), floats(second(values)), output(values, x.dims));
      };
    case BIAS_GRADIENT:
      return (values) => {
        const dY = first(values);
        const [n, channels, ...positions] = dY.dims as number[];
        const p = sizeOf(positions);
        kernels.biasGradient(floats(dY), output(values, [channels as number]), n as number, channels as number, p);
      };
    default:
      throw new Error(`internal: no native kernel for ${node.op_type}`);
  }
}
