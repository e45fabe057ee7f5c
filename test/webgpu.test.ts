/**
 * Training on onnxruntime-node's WebGPU provider agrees with the CPU. On a machine without a GPU this
 * runs on Mesa's software Vulkan driver, which `.ci/install-lavapipe.sh` unpacks into .apt/; without
 * any Vulkan driver the test skips and says why.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Must be set before the first WebGPU session: Dawn reads it when it creates its Vulkan instance.
const icd = resolve('.apt/lvp25_icd.json');
if (!process.env.VK_ICD_FILENAMES && existsSync(icd)) process.env.VK_ICD_FILENAMES = icd;

const { sgd } = await import('../core/training/optim/index.ts');
const { createNodeTrainer } = await import('../train/trainer.ts');
const { ZOO } = await import('../core/model/zoo/index.ts');
const { syntheticDigits } = await import('./helpers/synthetic.ts');
const { fixtureBatch, fixtureWeights } = await import('./helpers/fixture-data.ts');
const { expectThreePytorchSteps, plainSgdCases } = await import('./helpers/torch-training.ts');
const { buildTrainingGraph } = await import('../core/training/training-graph.ts');

async function webgpuAvailable(): Promise<string | undefined> {
  try {
    const t = await createNodeTrainer(ZOO.mlp.build(), { optimizer: sgd(), device: 'webgpu' });
    await t.release();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const unavailable = await webgpuAvailable();
if (unavailable) {
  console.warn(
    `skipping WebGPU training test: ${unavailable} — run .ci/install-lavapipe.sh for a software Vulkan driver`,
  );
}

describe.skipIf(Boolean(unavailable))('WebGPU training', () => {
  // Float32 on a different device sums in a different order: 5 steps drift apart by ~1e-5 relative.
  const TOLERANCE = 1e-3;

  for (const name of ['cnn', 'resnet'] as const) {
    it(`${name}: 5 SGD steps on webgpu match the CPU within ${TOLERANCE} relative`, async () => {
      const { images, labels } = syntheticDigits(16, 4);
      const run = async (device: 'cpu' | 'webgpu') => {
        const trainer = await createNodeTrainer(ZOO[name].build(), {
          optimizer: sgd({ momentum: 0.5 }),
          seed: 1,
          device,
        });
        expect(trainer.provider).toBe(device);
        const losses: number[] = [];
        for (let s = 0; s < 5; s++) losses.push((await trainer.step(images, labels, 0.05)).loss);
        const weights = trainer.weights();
        await trainer.release();
        return { losses, weights };
      };
      const cpu = await run('cpu');
      const gpu = await run('webgpu');
      const lossDrift = Math.max(
        ...gpu.losses.map((l, i) => Math.abs(l - (cpu.losses[i] as number)) / (cpu.losses[i] as number)),
      );
      console.log(`${name}: webgpu vs cpu, worst loss difference over 5 steps ${lossDrift.toExponential(2)} relative`);
      expect(lossDrift).toBeLessThan(TOLERANCE);
      for (const [param, w] of cpu.weights) {
        const g = gpu.weights.get(param) as Float32Array;
        const scale = Math.max(...Array.from(w, Math.abs));
        const worst = Math.max(...Array.from(w, (v, i) => Math.abs(v - (g[i] as number))));
        expect(worst / scale, param).toBeLessThan(TOLERANCE);
      }
    }, 120_000);
  }

  // The WebGPU graph (core/training/gpu-graph.ts: residual Sums as Adds, the max-pool routed by mask) on the
  // provider itself against PyTorch's float64 steps: a Conv + Add fusion that overwrote the residual would show here.
  for (const c of plainSgdCases().filter((c) => c.model === 'cnn' || c.model === 'resnet')) {
    it(`${c.model}: PyTorch's three SGD steps on webgpu`, async () => {
      const module = ZOO[c.model].build();
      const weights = fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params);
      const trainer = await createNodeTrainer(module, { optimizer: sgd({ momentum: 0.5 }), weights, device: 'webgpu' });
      try {
        expect(trainer.provider).toBe('webgpu');
        await expectThreePytorchSteps(trainer, fixtureBatch(), c);
      } finally {
        await trainer.release();
      }
    }, 120_000);
  }

  // Where ORT puts each node of every zoo model's WebGPU step (its profile names the provider): on the device,
  // except the labels' OneHot (the input's edge), the correct count's Equal of two [N] vectors (the output's
  // edge) and scalar arithmetic on the batch size (scalars in and out). Any other node on the CPU costs a round
  // trip to the device in every step.
  type Shapes = Record<string, number[]>[];
  const dimsOf = (shapes: Shapes | undefined) => (shapes ?? []).flatMap((o) => Object.values(o));
  it('every zoo model: the WebGPU step runs every node on the device but the edges and batch-size scalars', async () => {
    const { MODEL_NAMES } = await import('../core/model/zoo/index.ts');
    const dir = mkdtempSync(join(tmpdir(), 'webgpu-placement-'));
    const { images, labels } = syntheticDigits(8, 2);
    const misplaced: string[] = [];
    try {
      for (const name of MODEL_NAMES) {
        process.env.MNIST_ONNX_CNN_ORT_PROFILE = join(dir, name);
        const trainer = await createNodeTrainer(ZOO[name].build(), { optimizer: sgd(), device: 'webgpu' });
        delete process.env.MNIST_ONNX_CNN_ORT_PROFILE;
        await trainer.step(images, labels, 0.01);
        await trainer.release();
        const files = readdirSync(dir).filter((f) => f.startsWith(`${name}_`));
        expect(files, `${name}: one profile`).toHaveLength(1);
        const events = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8')) as {
          cat?: string;
          name: string;
          args?: { provider?: string; op_name?: string; input_type_shape?: Shapes; output_type_shape?: Shapes };
        }[];
        const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
        const onDevice = kernels.filter((e) => e.args?.provider === 'WebGpuExecutionProvider');
        expect(onDevice.length, `${name}: kernels on WebGPU`).toBeGreaterThan(kernels.length / 2);
        for (const e of kernels) {
          if (e.args?.provider === 'WebGpuExecutionProvider') continue;
          const op = e.args?.op_name ?? '?';
          const [inputs, outputs] = [dimsOf(e.args?.input_type_shape), dimsOf(e.args?.output_type_shape)];
          const scalar = (dims: number[]) => dims.length === 0 || (dims.length === 1 && dims[0] === 1);
          const edge =
            op === 'OneHot' || (op === 'Equal' && [...inputs, ...outputs].every((dims) => dims.length === 1));
          if (!edge && !(inputs.length + outputs.length > 0 && [...inputs, ...outputs].every(scalar)))
            misplaced.push(
              `${name}: ${op} on ${e.args?.provider} ${JSON.stringify(inputs)} → ${JSON.stringify(outputs)}`,
            );
        }
      }
    } finally {
      delete process.env.MNIST_ONNX_CNN_ORT_PROFILE;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(misplaced).toEqual([]);
  }, 120_000);
});
