/**
 * The step graph for GPU providers (core/training/gpu-graph.ts): it holds none of the ops the WebGPU provider
 * leaves on the CPU (each one a host round trip per step), and it takes PyTorch's three float64 SGD steps
 * (test/fixtures/torch-training.json) — run here through a real ORT CPU session under a runtime that accepts
 * the GPU device names, at optimization level 'extended': the CPU provider's own layout fusions (level 'all'),
 * which a GPU provider does not apply, fuse Conv + Add with the residual as an input they overwrite.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { MODEL_NAMES, ZOO } from '../core/model/zoo/index.ts';
import type { OrtRuntime, Provider } from '../core/ort-runtime.ts';
import { GPU_GRADIENT_RULES, sumsAsAdds } from '../core/training/gpu-graph.ts';
import { sgd } from '../core/training/optim/index.ts';
import { Trainer } from '../core/training/trainer-core.ts';
import { buildTrainingGraph } from '../core/training/training-graph.ts';
import { sessionOptions } from '../node/execution.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
import { fixtureBatch, fixtureWeights } from './helpers/fixture-data.ts';
import { expectThreePytorchSteps, plainSgdCases } from './helpers/torch-training.ts';

/** onnxruntime-node on the CPU for whichever GPU device the trainer asks for: the graph is what is under test. */
const cpuUnder = (provider: Provider): OrtRuntime => ({
  Tensor: ort.Tensor,
  async createSession(model, settings) {
    const options = { ...sessionOptions('cpu', { threads: settings.threads }), graphOptimizationLevel: 'extended' };
    return {
      session: await ort.InferenceSession.create(model, options as ort.InferenceSession.SessionOptions),
      provider,
    };
  },
});

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

  it('sumsAsAdds: fresh names that clash with none already there, and the same sums', async () => {
    const nodes = sumsAsAdds([
      { op_type: 'Identity', name: 's_partial0_add0', input: ['a'], output: ['s_partial0'] },
      { op_type: 'Sum', input: ['a', 'b', 'c'], output: ['s'] },
      { op_type: 'Sum', input: ['s', 's_partial0', 'a', 'b'], output: ['t'] },
    ]);
    const outputs = nodes.flatMap((n) => n.output);
    const names = nodes.map((n) => n.name);
    expect(new Set(outputs).size).toBe(outputs.length);
    expect(names.every(Boolean) && new Set(names).size === names.length).toBe(true);
    expect(nodes.map((n) => n.op_type)).toEqual(['Identity', 'Add', 'Add', 'Add', 'Add', 'Add']);
    const g = new GraphBuilder('sums');
    for (const x of ['a', 'b', 'c']) g.input(x, 'FLOAT', [2]);
    g.nodes.push(...nodes);
    g.output('t', 'FLOAT', [2]);
    const session = await ort.InferenceSession.create(encodeModel(g.toModel()));
    const feed = (v: number[]) => new ort.Tensor('float32', Float32Array.from(v), [2]);
    const { t } = await session.run({ a: feed([1, 2]), b: feed([10, 20]), c: feed([100, 200]) });
    await session.release();
    // s = a + b + c; t = s + a + a + b
    expect([...((t as ort.Tensor).data as Float32Array)]).toEqual([123, 246]);
  });

  for (const c of plainSgdCases())
    for (const device of ['webgpu', 'cuda'] as const) {
      it(`${c.model} on ${device}'s graph: PyTorch's three SGD steps (max-pool routing by mask${device === 'webgpu' ? ', Sums as Adds' : ''})`, async () => {
        const module = ZOO[c.model].build();
        const weights = fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params);
        const trainer = await Trainer.create(module, {
          optimizer: sgd({ momentum: 0.5 }),
          weights,
          device,
          runtime: cpuUnder(device),
        });
        try {
          expect(trainer.provider).toBe(device);
          await expectThreePytorchSteps(trainer, fixtureBatch(), c);
        } finally {
          await trainer.release();
        }
      });
    }
});
