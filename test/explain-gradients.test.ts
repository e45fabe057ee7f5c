/**
 * The gradient graphs behind saliency, Grad-CAM and adversarial digits (core/explain-gradients), built from
 * served model files with our own gradient rules and run in onnxruntime-node, against two outside judges:
 * - float64 central finite differences of the independent reference evaluator (test/helpers/reference.ts)
 *   on the committed cnn fixture: every pixel of the saliency, every element of dJ/d(conv2's maps), and
 *   sampled pixels of the log-probability's gradient;
 * - PyTorch's autograd (test/fixtures/torch-gradients.json, make-torch-gradients.py) on the torch-exported
 *   fixture: saliency, the log-probability's gradient and Grad-CAM (weights, coarse map, upsampled map).
 * And: every zoo model's deployable file against finite differences at sampled pixels (the MLP without
 * Grad-CAM), fp16/int8 variants and a static-batch export; a model with an op we cannot differentiate is
 * refused, naming the op.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD, NUM_CLASSES } from '../core/contract.ts';
import { makeDeployable } from '../core/deploy/deployable.ts';
import { moduleOfWeight } from '../core/deploy/explain.ts';
import { makeVariant } from '../core/deploy/precision.ts';
import { explainImage } from '../core/explain-gradients/explain-image.ts';
import { gradCam, upsampleBilinear } from '../core/explain-gradients/grad-cam.ts';
import { GradientSession } from '../core/explain-gradients/session.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { MODEL_NAMES, zooEntry } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { nodeRuntime } from '../node/execution.ts';
import { loadMnist } from '../node/mnist.ts';
import { int } from '../onnx/attributes.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { decodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';
import { floatTensor } from '../onnx/tensor.ts';
import { evaluate, type F64 } from './helpers/reference.ts';

const FIXTURE = 'test/fixtures/models/cnn/1/model.onnx';
const TORCH = 'test/fixtures/torch-cnn-opset13.onnx';
/** Central differences in float64: the network is piecewise linear, so only a kink inside ±H errs. */
const H = 1e-7;
/**
 * float32 gradients vs float64 judges: error ≤ this × the gradient's largest magnitude (measured: 2.5e-7
 * against finite differences).
 */
const TOLERANCE = 1e-5;

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value');
  return value;
}
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxError = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

function logSoftmax(z: Float64Array, c: number): number {
  const max = Math.max(...z);
  return (z[c] as number) - max - Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
}

/** J in float64 with `value` (the input, or an inner value) fed as given. */
function objective(model: ModelProto, value: string, data: Float64Array, shape: number[], c: number, logProb: boolean) {
  const z = evaluate(model, new Map<string, F64>([[value, { shape, data }]]), 'logits').data;
  return logProb ? logSoftmax(z, c) : (z[c] as number);
}

/** Central differences of J w.r.t. the listed elements of `value`. */
function finiteDifferences(
  model: ModelProto,
  value: string,
  point: Float64Array,
  shape: number[],
  c: number,
  logProb: boolean,
  elements: number[],
): Map<number, number> {
  return new Map(
    elements.map((i) => {
      const at = (delta: number) => {
        const moved = point.slice();
        moved[i] = (moved[i] as number) + delta;
        return objective(model, value, moved, shape, c, logProb);
      };
      return [i, (at(H) - at(-H)) / (2 * H)];
    }),
  );
}

describe('saliency and Grad-CAM gradients of the cnn fixture vs float64 finite differences', () => {
  let session: GradientSession;
  let model: ModelProto;
  let pixels: Float32Array;
  let label: number;

  beforeAll(async () => {
    model = decodeModel(readFileSync(FIXTURE));
    session = await GradientSession.create(nodeRuntime, model);
    const test = await loadMnist('test');
    // MNIST's flat black background makes max-pool windows tie, and a tie is a kink: there central
    // differences average the two sides while the gradient (ours and PyTorch's) picks the first. A jitter
    // of up to 1e-3 makes the point generic, with no ties and no kink within ±H.
    const rng = new Rng(7);
    pixels = Float32Array.from(test.images.subarray(0, IMAGE_PIXELS), (v) => v / 255 + rng.uniform(0, 1e-3));
    label = test.labels[0] as number;
  });
  afterAll(() => session?.release());

  it('dz_c/dx at every pixel for the predicted class, every 4th for another', async () => {
    const logits = await session.logits(pixels);
    const predicted = logits.indexOf(Math.max(...logits));
    expect(predicted).toBe(label);
    const point = Float64Array.from(pixels);
    for (const [c, every] of [
      [predicted, 1],
      [(predicted + 2) % NUM_CLASSES, 4],
    ] as const) {
      const { inputGradient } = await session.gradients(pixels, [{ target: c, kind: 'score' }]);
      const checked = Array.from({ length: IMAGE_PIXELS / every }, (_, k) => k * every);
      const fd = finiteDifferences(model, 'input', point, [1, 1, 28, 28], c, false, checked);
      const reference = checked.map((i) => fd.get(i) as number);
      const error = maxError(
        checked.map((i) => inputGradient[i] as number),
        reference,
      );
      console.log(
        `class ${c}: saliency max |error| ${error.toExponential(2)} of max |grad| ${maxAbs(reference).toFixed(4)}`,
      );
      expect(error).toBeLessThan(TOLERANCE * maxAbs(reference));
    }
  }, 120_000);

  it('d log p_c/dx (the adversarial objective) at 64 sampled pixels', async () => {
    const c = 3;
    const { inputGradient } = await session.gradients(pixels, [{ target: c, kind: 'log-probability' }]);
    const sampled = Array.from({ length: 64 }, (_, k) => (k * 337 + 101) % IMAGE_PIXELS);
    const fd = finiteDifferences(model, 'input', Float64Array.from(pixels), [1, 1, 28, 28], c, true, sampled);
    const scale = maxAbs(inputGradient);
    for (const i of sampled)
      expect(Math.abs((inputGradient[i] as number) - (fd.get(i) as number))).toBeLessThan(TOLERANCE * scale);
  }, 60_000);

  it("dz_c/d(conv2's maps) at every element, and Grad-CAM from them", async () => {
    const c = label;
    const { maps, gradient, dims } = must((await session.gradients(pixels, [{ target: c, kind: 'score' }])).cam);
    const layer = must(session.graph.camLayer);
    expect(layer.node).toBe('Conv_3');
    const [k, h, w] = dims;
    expect([k, h, w]).toEqual([20, 8, 8]);
    const point = Float64Array.from(maps);
    const all = Array.from({ length: k * h * w }, (_, i) => i);
    const fd = finiteDifferences(model, layer.output, point, [1, k, h, w], c, false, all);
    const reference = all.map((i) => fd.get(i) as number);
    expect(maxError(gradient, reference)).toBeLessThan(TOLERANCE * maxAbs(reference));
    // Grad-CAM of the reference gradient equals Grad-CAM of ours (to the same tolerance).
    const ours = gradCam(maps, gradient, dims).coarse;
    const theirs = gradCam(maps, reference, dims).coarse;
    expect(maxError(ours, theirs)).toBeLessThan(TOLERANCE * maxAbs(theirs) + 1e-7);
    expect(maxAbs(ours)).toBeGreaterThan(0); // a digit the model reads right lights something up
  }, 60_000);

  it('fp16 and int8 variants (Cast / DequantizeLinear weights) give nearly the fp32 saliency', async () => {
    const { inputGradient: fp32 } = await session.gradients(pixels, [{ target: label, kind: 'score' }]);
    for (const variant of ['fp16', 'int8'] as const) {
      const other = await GradientSession.create(nodeRuntime, makeVariant(model, variant));
      const { inputGradient } = await other.gradients(pixels, [{ target: label, kind: 'score' }]);
      await other.release();
      expect(maxError(inputGradient, fp32), variant).toBeLessThan((variant === 'fp16' ? 0.01 : 0.05) * maxAbs(fp32));
    }
  });

  it('a batch of objectives gives each image its own gradient', async () => {
    const two = new Float32Array(2 * IMAGE_PIXELS);
    two.set(pixels);
    two.set(
      pixels.map((v) => 1 - v),
      IMAGE_PIXELS,
    );
    const both = await session.gradients(two, [
      { target: 1, kind: 'score' },
      { target: 5, kind: 'log-probability' },
    ]);
    const first = await session.gradients(pixels, [{ target: 1, kind: 'score' }]);
    expect(maxError(both.inputGradient.subarray(0, IMAGE_PIXELS), first.inputGradient)).toBeLessThan(1e-6);
  });
});

interface TorchClass {
  class: number;
  saliency: number[];
  logProbabilityGradient: number[];
  camWeights: number[];
  camCoarse: number[];
  cam: number[];
}

describe('the torch-exported cnn (Shape→Gather→Unsqueeze→Concat→Reshape) vs PyTorch autograd', () => {
  const golden = () =>
    JSON.parse(readFileSync('test/fixtures/torch-gradients.json', 'utf8')) as {
      pixels: number[];
      logits: number[];
      classes: TorchClass[];
    };

  for (const file of [TORCH, 'test/fixtures/torch-cnn-static.onnx']) {
    it(`${file}: saliency, log-probability gradient and Grad-CAM for two classes`, async () => {
      const { pixels: stored, logits: torchLogits, classes } = golden();
      const pixels = Float32Array.from(stored, (v) => v / 255);
      const session = await GradientSession.create(nodeRuntime, decodeModel(readFileSync(file)));
      expect(session.folded).toBe(false); // it takes normalized pixels; gradients come back per raw pixel
      const logits = await session.logits(pixels);
      expect(maxError(logits, torchLogits)).toBeLessThan(1e-5);
      // Both classes at once: in one batch, or one run each where the export's batch is static (1).
      const both = await explainImage(
        session,
        pixels,
        classes.map((g) => g.class),
      );
      both.classes.forEach((c, i) => {
        const g = must(classes[i]);
        expect(c.class).toBe(g.class);
        expect(maxError(c.saliency, g.saliency)).toBeLessThan(TOLERANCE * maxAbs(g.saliency));
        expect(maxError(must(c.cam).map, g.cam)).toBeLessThan(TOLERANCE * maxAbs(g.cam) + 1e-9);
      });
      for (const g of classes) {
        const score = await session.gradients(pixels, [{ target: g.class, kind: 'score' }]);
        const logProb = await session.gradients(pixels, [{ target: g.class, kind: 'log-probability' }]);
        const relative = maxError(score.inputGradient, g.saliency) / maxAbs(g.saliency);
        console.log(`${file} class ${g.class}: saliency max error ${relative.toExponential(1)} of its largest`);
        expect(relative).toBeLessThan(TOLERANCE);
        expect(maxError(logProb.inputGradient, g.logProbabilityGradient)).toBeLessThan(
          TOLERANCE * maxAbs(g.logProbabilityGradient),
        );
        const { maps, gradient, dims } = must(score.cam);
        const cam = gradCam(maps, gradient, dims);
        expect(maxError(cam.weights, g.camWeights)).toBeLessThan(TOLERANCE * maxAbs(g.camWeights));
        expect(maxError(cam.coarse, g.camCoarse)).toBeLessThan(TOLERANCE * maxAbs(g.camCoarse) + 1e-9);
        const up = upsampleBilinear(cam.coarse, 8, 8, 28, 28);
        expect(maxError(up, g.cam)).toBeLessThan(TOLERANCE * maxAbs(g.cam) + 1e-9);
      }
      await session.release();
    });
  }
});

/** Grad-CAM's layer per zoo model: the last Conv all paths cross with maps ≥ 4×4 (inception's last Conv is in a branch, cnn7's is 1×1). */
const CAM_MODULES: Record<string, string | undefined> = {
  mlp: undefined,
  cnn: 'conv2',
  cnn3: 'conv2',
  inception: 'conv2',
  resnet: 'conv2',
  'resnet-scaled': 'conv2',
  'resnet-convshortcut': 'conv2',
  densenet: 'transition1.conv',
  'fast-cnn': 'conv3.conv',
  cnn7: 'block2.2.conv',
  'cnn7-wide': 'block2.2.conv',
  'cnn7-wider': 'block2.2.conv',
  'cnn9-wide': 'block2.3.conv',
};

describe("every zoo model's deployable file vs float64 finite differences at 8 pixels", () => {
  for (const name of MODEL_NAMES) {
    it(name, async () => {
      const { model: plain } = inferenceModel(zooEntry(name).build(), { seed: 1 });
      const { model } = makeDeployable(plain, { mean: MNIST_MEAN, std: MNIST_STD, metadata: {} });
      const session = await GradientSession.create(nodeRuntime, model);
      // A stroke-like pattern with a little jitter (no ties in pooling windows).
      const x = new Float32Array(IMAGE_PIXELS).map((_, i) => Math.max(0, Math.sin(i * 0.37)) + ((i * 13) % 7) * 1e-4);
      const { classes } = await explainImage(session, x, [4]);
      const saliency = must(classes[0]).saliency;
      const pixels = [50, 180, 300, 377, 410, 480, 600, 700];
      const fd = finiteDifferences(model, 'input', Float64Array.from(x), [1, 1, 28, 28], 4, false, pixels);
      for (const i of pixels)
        expect(Math.abs((saliency[i] as number) - (fd.get(i) as number)), `pixel ${i}`).toBeLessThan(
          TOLERANCE * maxAbs(saliency),
        );
      // Grad-CAM wherever there is a convolution (the MLP has none: saliency only), on the layer every path
      // to the logits crosses, with maps of at least 4×4.
      const camNode = model.graph?.node?.find((n) => n.name === session.graph.camLayer?.node);
      expect(camNode && moduleOfWeight(camNode.input[1] as string)).toBe(CAM_MODULES[name]);
      expect(classes[0]?.cam?.map.length).toBe(name === 'mlp' ? undefined : IMAGE_PIXELS);
      await session.release();
    });
  }
});

it('a model with an op we have no gradient rule for is refused, naming the op', async () => {
  const g = new GraphBuilder('tanh_net');
  const x = g.input('input', 'FLOAT', ['N', 1, 28, 28]);
  const w = g.initializer('conv.weight', floatTensor([2, 1, 3, 3], new Float32Array(18).fill(0.1)));
  const fc = g.initializer('fc.weight', floatTensor([10, 2 * 26 * 26], new Float32Array(10 * 2 * 26 * 26).fill(0.01)));
  const hidden = g.op('Flatten', [g.op('Tanh', [g.op('Conv', [x, w])])]);
  g.output(g.op('Gemm', [hidden, fc], { transB: int(1) }), 'FLOAT', ['N', 10], 'logits');
  await expect(GradientSession.create(nodeRuntime, g.toModel())).rejects.toThrow(/no gradient rule for op 'Tanh'/);
});
