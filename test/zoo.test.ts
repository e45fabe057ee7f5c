/** The model zoo: PyTorch's parameter and MAC counts, shapes, and real onnxruntime-node sessions. */
import { describe, expect, it } from 'vitest';
import { countParams, inspectModule } from '../core/model/forward-graph.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { MODEL_NAMES, ZOO } from '../core/model/zoo/index.ts';
import { RECIPES } from '../core/training/recipes.ts';
import { parseTrainConfig } from '../core/training/run-config-schema.ts';
import { buildGradientGraph } from '../core/training/training-graph.ts';
import { main } from '../train/cli/summary.ts';
import { formatShape } from '../train/summary-table.ts';
import { failingCli, passingCli } from './helpers/cli.ts';
import { runModel } from './helpers/ort.ts';

// torchinfo / hand counts of the tutorial's PyTorch modules (Conv + Linear MACs per image).
const PYTORCH_COUNTS: Record<string, { params: number; macs: number }> = {
  mlp: { params: 575_050, macs: 574_080 },
  cnn: { params: 8_490, macs: 467_200 },
  cnn3: { params: 34_522, macs: 1_126_048 },
  inception: { params: 97_298, macs: 6_019_200 },
  resnet: { params: 41_514, macs: 2_013_184 },
  'resnet-scaled': { params: 41_514, macs: 2_013_184 },
  // + conv3 1×1 in each block: 16·16+16 + 32·32+32 params; 16·12·12·16 + 32·4·4·32 MACs
  'resnet-convshortcut': { params: 41_514 + 272 + 1_056, macs: 2_013_184 + 36_864 + 16_384 },
  // Ours, counted on bench/torch_models.py's PyTorch modules (sum of numel; Conv/Linear forward hooks).
  densenet: { params: 24_166, macs: 2_759_908 },
  'fast-cnn': { params: 39_530, macs: 752_768 },
  cnn7: { params: 325_994, macs: 15_162_752 },
  'cnn7-wide': { params: 731_674, macs: 33_969_216 },
  'cnn7-wider': { params: 1_299_146, macs: 60_259_072 },
  'cnn9-wide': { params: 835_642, macs: 51_221_568 },
};

describe('model zoo', () => {
  for (const [name, counts] of Object.entries(PYTORCH_COUNTS)) {
    it(`${name}: ${counts.params} parameters, ${counts.macs} MACs per image`, () => {
      const { params, macs } = inspectModule(ZOO[name as keyof typeof ZOO].build());
      expect(countParams(params)).toBe(counts.params);
      expect(macs).toBe(counts.macs);
    });
  }

  it('cnn3 follows the tutorial shape trace', () => {
    const { rows } = inspectModule(ZOO.cnn3.build());
    expect(rows.map((r) => formatShape(r.outputShape))).toEqual([
      '16×24×24',
      '16×12×12',
      '32×8×8',
      '32×4×4',
      '64×2×2',
      '64×1×1',
      '32',
      '16',
      '10',
    ]);
  });

  it('names parameters like PyTorch state_dict keys', () => {
    const names = inspectModule(ZOO.inception.build()).params.map((p) => p.name);
    expect(names.slice(0, 4)).toEqual([
      'conv1.weight',
      'conv1.bias',
      'incep1.branch1x1.weight',
      'incep1.branch1x1.bias',
    ]);
    expect(names).toContain('incep2.branch_pool.weight');
    expect(
      inspectModule(ZOO.densenet.build()).params.find((p) => p.name === 'block1.0.norm.running_var'),
    ).toMatchObject({
      trainable: false,
    });
  });

  it("--dropout sets every dropout layer of cnn7's family and is refused for a model without any", () => {
    const rates = (module: ReturnType<typeof ZOO.cnn7.build>) =>
      buildGradientGraph(module).randomInputs.map((input) => input.dropProbability);
    expect(rates(ZOO['cnn7-wide'].build())).toEqual([0.4, 0.4, 0.4]); // Deotte's, after each block and the head
    expect(rates(ZOO['cnn7-wide'].build({ dropout: 0.25 }))).toEqual([0.25, 0.25, 0.25]);
    expect(rates(ZOO['cnn9-wide'].build({ dropout: 0.1 }))).toEqual([0.1, 0.1, 0.1]);
    // The weights keep their shapes: a checkpoint trained with one rate loads into a net built with another.
    const shapes = (module: ReturnType<typeof ZOO.cnn7.build>) => inspectModule(module).params.map((p) => p.shape);
    expect(shapes(ZOO.cnn7.build({ dropout: 0 }))).toEqual(shapes(ZOO.cnn7.build()));
    const config = { ...RECIPES.best.config, model: 'cnn7-wide' as const, dropout: 0.25 };
    expect(parseTrainConfig(config, 'flags').dropout).toBe(0.25);
    expect(() => parseTrainConfig({ ...config, model: 'cnn' }, 'flags')).toThrow(/cnn has no dropout layers/);
    expect(() => parseTrainConfig({ ...config, dropout: 1 }, 'flags')).toThrow(/dropout/);
  });

  for (const name of MODEL_NAMES) {
    it(`${name}: inference graph runs in onnxruntime-node with N = 1 and 7`, async () => {
      const { model } = inferenceModel(ZOO[name].build(), { seed: 1 });
      for (const n of [1, 7]) {
        const image = Float32Array.from({ length: n * 784 }, (_, i) => ((i * 7919) % 255) / 255);
        const out = await runModel(model, { input: { dims: [n, 1, 28, 28], data: image } });
        const logits = out.logits as unknown as { dims: number[]; data: Float32Array };
        expect(logits.dims).toEqual([n, 10]);
        expect(logits.data.every(Number.isFinite)).toBe(true);
      }
    });
  }

  it('the residual variants apply conv2 to relu(conv1(x)), not to x (the tutorial typo)', async () => {
    for (const name of ['resnet-scaled', 'resnet-convshortcut'] as const) {
      const { model, weights } = inferenceModel(ZOO[name].build(), { seed: 3 });
      const zeroed = new Map(weights);
      zeroed.set('rblock1.conv1.weight', new Float32Array(weights.get('rblock1.conv1.weight')?.length ?? 0));
      const { model: ablated } = inferenceModel(ZOO[name].build(), { weights: zeroed });
      const feeds = {
        input: { dims: [1, 1, 28, 28], data: Float32Array.from({ length: 784 }, (_, i) => (i % 29) / 29) },
      };
      const a = (await runModel(model, feeds)).logits?.data as Float32Array;
      const b = (await runModel(ablated, feeds)).logits?.data as Float32Array;
      expect(Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? 0))))).toBeGreaterThan(1e-4);
    }
  });
});

describe('npm run summary', () => {
  it('prints the table and the totals on their own lines', async () => {
    const out = (await passingCli(main, '--model', 'cnn3')).stdout;
    expect(out).toMatch(/^Total params: 34,522$/m);
    expect(out).toMatch(/^Total MACs: 1,126,048$/m);
    expect(out).toMatch(/conv1 \(Conv2d\)\s+│\s+16×24×24\s+│\s+416\s+│\s+230,400/);
  });

  it('fails with one line and a non-zero exit on an unknown model', async () => {
    expect(await failingCli(main, '--model', 'lenet')).toBe(
      "error: unknown model 'lenet'; choose one of: mlp, cnn, cnn3, inception, resnet, resnet-scaled, resnet-convshortcut, densenet, fast-cnn, cnn7, cnn7-wide, cnn7-wider, cnn9-wide",
    );
  });
});
