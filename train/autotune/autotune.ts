/**
 * Per-shape autotuning, like cuDNN's benchmark mode: for each Conv node of a model, time the candidate
 * weight-gradient formulations on its real shapes once, keep the fastest in the on-disk cache, and hand
 * back a gradient-rule table that builds each node with its winner.
 *
 * @example
 * const { rules } = await autotuneRules(ZOO.resnet.build(), { batch: 32, cacheDir: defaultCacheDir() });
 * const graph = buildGradientGraph(module, { rules });
 */
import type { GradientRule } from '../autodiff/rule.ts';
import { convGeometryOf, convRule } from '../autodiff/rules/conv.ts';
import {
  CONV_WEIGHT_GRADIENTS,
  type ConvGeometry,
  type ConvWeightGradient,
} from '../autodiff/rules/conv-weight-gradient.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import { emitForward } from '../forward-graph.ts';
import type { Module } from '../layers/index.ts';
import { readChoices, writeChoices } from './cache.ts';
import { convKey, timeConvWeightGradients } from './conv-timing.ts';

export interface AutotuneSettings {
  /** Images per session run the step will see (per worker when the batch is split). */
  batch: number;
  /** Where choices are cached (see cache.ts). */
  cacheDir: string;
  /** Told once per newly measured shape. */
  onNotice?: (message: string) => void;
}

export interface Autotuned {
  rules: Record<string, GradientRule>;
  /** The formulation per cache key, for logs and tests. */
  choices: Map<string, ConvWeightGradient>;
}

const isFormulation = (v: string | undefined): v is ConvWeightGradient =>
  (CONV_WEIGHT_GRADIENTS as readonly (string | undefined)[]).includes(v);

export async function autotuneRules(module: Module, settings: AutotuneSettings): Promise<Autotuned> {
  const { graph } = emitForward(module, { training: true });
  const geometries = graph.nodes.filter((n) => n.op_type === 'Conv').map((n) => convGeometryOf(graph, n));
  const cached = await readChoices(settings.cacheDir);
  const choices = new Map<string, ConvWeightGradient>();
  let measured = false;
  for (const geo of geometries) {
    const key = convKey(geo, settings.batch);
    if (choices.has(key)) continue;
    const known = cached.get(key);
    if (isFormulation(known)) {
      choices.set(key, known);
      continue;
    }
    const times = await timeConvWeightGradients(geo, settings.batch);
    const best = [...times].sort((a, b) => a[1] - b[1])[0]?.[0] ?? 'conv';
    choices.set(key, best);
    cached.set(key, best);
    measured = true;
    const summary = [...times].map(([f, ms]) => `${f} ${ms.toFixed(2)} ms`).join(', ');
    settings.onNotice?.(`autotune: ${describe(geo)} → ${best} (${summary})`);
  }
  if (measured) await writeChoices(settings.cacheDir, cached);
  const choose = (geo: ConvGeometry) => choices.get(convKey(geo, settings.batch)) ?? 'conv';
  return { rules: { ...gradientRules, Conv: convRule(choose) }, choices };
}

function describe(geo: ConvGeometry): string {
  const [c, h, w] = geo.input;
  const [m] = geo.output;
  return `conv ${c}→${m} ${geo.kernel.join('×')} on ${h}×${w} (stride ${geo.strides[0]}, pad ${geo.pads[0]})`;
}
