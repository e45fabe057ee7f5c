/**
 * The step graph for GPU providers (core/training/gpu-graph.ts): it holds none of the ops the WebGPU provider
 * leaves on the CPU (each one a host round trip per step), and it trains exactly like the CPU's graph — run
 * here through a real ORT CPU session under a runtime that accepts the GPU device name.
 */
import { describe, expect, it } from 'vitest';
import { MODEL_NAMES, ZOO } from '../core/model/zoo/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import { GPU_GRADIENT_RULES, sumsAsAdds } from '../core/training/gpu-graph.ts';
import { sgd } from '../core/training/optim/index.ts';
import { Trainer } from '../core/training/trainer-core.ts';
import { buildTrainingGraph } from '../core/training/training-graph.ts';
import { nodeRuntime } from '../node/execution.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import { syntheticDigits } from './helpers/synthetic.ts';

/** onnxruntime-node on the CPU, whatever device the trainer asks for: the graph is what is under test. */
const cpuUnderGpuName: OrtRuntime = {
  Tensor: nodeRuntime.Tensor,
  async createSession(model, settings) {
    const { session } = await nodeRuntime.createSession(model, { ...settings, device: 'cpu' });
    return { session, provider: 'webgpu' };
  },
};

describe('the training step graph for GPU providers', () => {
  for (const name of MODEL_NAMES) {
    it(`${name}: no Sum, MaxUnpool or MaxPool Indices (the ops WebGPU runs on the CPU)`, () => {
      const graph = buildTrainingGraph(ZOO[name].build(), {
        optimizer: sgd({ momentum: 0.5 }),
        rules: GPU_GRADIENT_RULES,
      });
      const nodes = sumsAsAdds(graph.model.graph?.node ?? []);
      expect(nodes.filter((n) => n.op_type === 'Sum' || n.op_type === 'MaxUnpool').map((n) => n.name)).toEqual([]);
      expect(nodes.filter((n) => n.op_type === 'MaxPool' && n.output.length > 1).map((n) => n.name)).toEqual([]);
    });
  }

  for (const name of ['cnn', 'resnet', 'densenet', 'inception'] as const) {
    it(`${name}: three steps equal the CPU graph's (max-pool routing by mask, Sums as Adds)`, async () => {
      const { images, labels } = syntheticDigits(16, 3);
      const options = { optimizer: sgd({ momentum: 0.5 }), seed: 5, nchwc: false };
      const cpu = await createNodeTrainer(ZOO[name].build(), options);
      const gpu = await Trainer.create(ZOO[name].build(), { ...options, device: 'webgpu', runtime: cpuUnderGpuName });
      try {
        for (let step = 0; step < 3; step++) {
          const [a, b] = [await cpu.step(images, labels, 0.05), await gpu.step(images, labels, 0.05)];
          expect(b.loss).toBeCloseTo(a.loss, 5);
        }
        const [wa, wb] = [cpu.weights(), gpu.weights()];
        for (const [param, values] of wa) {
          const other = wb.get(param) as Float32Array;
          const worst = values.reduce((m, v, i) => Math.max(m, Math.abs(v - (other[i] as number))), 0);
          expect(worst, param).toBeLessThan(1e-5);
        }
      } finally {
        await cpu.release();
        await gpu.release();
      }
    });
  }
});
