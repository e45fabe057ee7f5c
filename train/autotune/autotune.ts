/**
 * Per-shape autotuning, like cuDNN's benchmark mode: for each Conv node (and non-overlapping MaxPool) of a
 * model, time the candidate gradient formulations on its real shapes once — in the model's whole gradient
 * step, where they run (step-timing.ts) — keep the fastest in the on-disk cache, and hand back a
 * gradient-rule table that builds each node with its winner.
 *
 * @example
 * const { rules } = await autotuneRules(ZOO.resnet.build(), { batch: 32, cacheDir: defaultCacheDir() });
 * const graph = buildGradientGraph(module, { rules });
 */
import { join } from 'node:path';
import type { GradientRule } from '../../core/autodiff/rule.ts';
import { convGeometryOf, convRule } from '../../core/autodiff/rules/conv.ts';
import { CONV_WEIGHT_GRADIENTS, type ConvGeometry } from '../../core/autodiff/rules/conv-weight-gradient.ts';
import { gradientRules } from '../../core/autodiff/rules/index.ts';
import {
  MAX_POOL_GRADIENTS,
  maxPoolGeometryOf,
  maxPoolRule,
  nonOverlapping,
} from '../../core/autodiff/rules/pooling.ts';
import { emitForward } from '../../core/model/forward-graph.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { CACHE_FILE, readChoices, writeChoices } from './cache.ts';
import { convKey, timeConvWeightGradients } from './conv-timing.ts';
import { maxPoolKey, timeMaxPoolGradients } from './pool-timing.ts';

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
  choices: Map<string, string>;
}

/** One node shape to tune: its cache key, the formulations allowed, and how to time them. */
interface Tunable {
  key: string;
  allowed: readonly string[];
  what: string;
  measure: () => Promise<Map<string, number>>;
}

export async function autotuneRules(module: Module, settings: AutotuneSettings): Promise<Autotuned> {
  const { graph } = emitForward(module, { training: true });
  const tunables: Tunable[] = [];
  for (const node of graph.nodes) {
    if (node.op_type === 'Conv') {
      const geo = convGeometryOf(graph, node);
      tunables.push({
        key: convKey(geo, settings.batch),
        allowed: CONV_WEIGHT_GRADIENTS,
        what: describeConv(geo),
        measure: () => timeConvWeightGradients(module, geo, settings.batch),
      });
    } else if (node.op_type === 'MaxPool' && nonOverlapping(maxPoolGeometryOf(graph, node))) {
      const geo = maxPoolGeometryOf(graph, node);
      tunables.push({
        key: maxPoolKey(geo, settings.batch),
        allowed: MAX_POOL_GRADIENTS,
        what: `max-pool ${geo.kernel.join('×')} on ${geo.input.join('×')}`,
        measure: () => timeMaxPoolGradients(module, geo, settings.batch),
      });
    }
  }
  const { choices: cached, unusable } = await readChoices(settings.cacheDir);
  const choices = new Map<string, string>();
  let measured = false;
  for (const t of tunables) {
    if (choices.has(t.key)) continue;
    const known = cached.get(t.key);
    if (known !== undefined && t.allowed.includes(known)) {
      choices.set(t.key, known);
      continue;
    }
    const times = await t.measure();
    const best = [...times].sort((a, b) => a[1] - b[1])[0]?.[0] ?? (t.allowed[0] as string);
    choices.set(t.key, best);
    cached.set(t.key, best);
    measured = true;
    const summary = [...times].map(([f, ms]) => `${f} ${ms.toFixed(2)} ms`).join(', ');
    settings.onNotice?.(`autotune: ${t.what} → ${best} (a gradient step with each: ${summary})`);
  }
  // An unusable cache never stops training: one line says so, and the choices just measured are used unsaved.
  const unsaved = measured ? (unusable ?? (await writeChoices(settings.cacheDir, cached))) : undefined;
  if (unsaved)
    settings.onNotice?.(
      `autotune: cannot use the cache ${join(settings.cacheDir, CACHE_FILE)} (${unsaved}); training with the choices just measured, unsaved`,
    );
  const pick = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const choice = choices.get(key);
    return (allowed as readonly string[]).includes(choice ?? '') ? (choice as T) : fallback;
  };
  return {
    rules: {
      ...gradientRules,
      Conv: convRule((geo) => pick(convKey(geo, settings.batch), CONV_WEIGHT_GRADIENTS, 'conv')),
      MaxPool: maxPoolRule((geo) => pick(maxPoolKey(geo, settings.batch), MAX_POOL_GRADIENTS, 'unpool')),
    },
    choices,
  };
}

function describeConv(geo: ConvGeometry): string {
  const [c, h, w] = geo.input;
  const [m] = geo.output;
  return `conv ${c}→${m} ${geo.kernel.join('×')} on ${h}×${w} (stride ${geo.strides[0]}, pad ${geo.pads[0]})`;
}
