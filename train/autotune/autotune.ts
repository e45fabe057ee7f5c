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
import type { NativeChoices } from '../../core/autodiff/rules/native.ts';
import {
  CPU_MAX_POOL_GRADIENTS,
  type MaxPoolGeometry,
  maxPoolGeometryOf,
  maxPoolRule,
  nonOverlapping,
  tiles,
} from '../../core/autodiff/rules/pooling.ts';
import { emitForward } from '../../core/model/forward-graph.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { CACHE_FILE, readChoices, writeChoices } from './cache.ts';
import { convKey, timeConvWeightGradients } from './conv-timing.ts';
import {
  NATIVE_OR_ORT,
  type NativeOrOrt,
  nativeConvInputKey,
  nativeMaxPoolKey,
  timeNativeChoices,
} from './native-timing.ts';
import { maxPoolKey, timeMaxPoolGradients } from './pool-timing.ts';
import { sameGeometry } from './step-timing.ts';

export interface AutotuneSettings {
  /** Images per session run the step will see (per worker when the batch is split). */
  batch: number;
  /** Where choices are cached (see cache.ts). */
  cacheDir: string;
  /** Told once per newly measured shape. */
  onNotice?: (message: string) => void;
  /**
   * The step computes Conv weight gradients natively: also choose, per Conv geometry, ORT's or the native
   * input gradient (native-timing.ts), measured after the ORT formulations, with them.
   */
  native?: boolean;
}

export interface Autotuned {
  rules: Record<string, GradientRule>;
  /** With `native`: where native chains of gradient steps start. */
  nativeGradients?: NativeChoices;
  /** The formulation per cache key, for logs and tests. */
  choices: Map<string, string>;
}

/** One node shape to tune: its cache key, the formulations allowed, and how to time them. */
interface Tunable {
  key: string;
  allowed: readonly string[];
  what: string;
  /** Typical ms per candidate, or 'same' when every candidate builds the same step (nothing to time). */
  measure: () => Promise<Map<string, number> | 'same'>;
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
        allowed: CPU_MAX_POOL_GRADIENTS,
        what: describePool(geo),
        measure: () => timeMaxPoolGradients(module, geo, settings.batch),
      });
    }
  }
  const { choices: cached, unusable } = await readChoices(settings.cacheDir);
  const choices = new Map<string, string>();
  let measured = false;
  /** Decide one tunable from the cache or by timing it; true when it was timed (and cached) now. */
  const settle = async (t: Tunable): Promise<boolean> => {
    if (choices.has(t.key)) return false;
    const known = cached.get(t.key);
    if (known !== undefined && t.allowed.includes(known)) {
      choices.set(t.key, known);
      return false;
    }
    const times = await t.measure();
    if (times === 'same') {
      choices.set(t.key, t.allowed[0] as string);
      return false; // decided by its neighbours: nothing cached, so a change in them gets it measured
    }
    const best = [...times].sort((a, b) => a[1] - b[1])[0]?.[0] ?? (t.allowed[0] as string);
    choices.set(t.key, best);
    cached.set(t.key, best);
    const summary = [...times].map(([f, ms]) => `${f} ${ms.toFixed(2)} ms`).join(', ');
    settings.onNotice?.(`autotune: ${t.what} → ${best} (a gradient step with each: ${summary})`);
    return true;
  };
  for (const t of tunables) measured = (await settle(t)) || measured;
  const pick = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const choice = choices.get(key);
    return (allowed as readonly string[]).includes(choice ?? '') ? (choice as T) : fallback;
  };
  const rules = {
    ...gradientRules,
    Conv: convRule((geo) => pick(convKey(geo, settings.batch), CONV_WEIGHT_GRADIENTS, 'conv')),
    MaxPool: maxPoolRule((geo) => pick(maxPoolKey(geo, settings.batch), CPU_MAX_POOL_GRADIENTS, 'unpool')),
  };
  // Where native chains start, in the step built with the choices above: one Conv (input gradient) or
  // max-pool geometry after another in backward order (a chain grows down from the loss), each measured
  // with those decided before it (undecided ones stay in ORT).
  const chosen = (key: string) => choices.get(key) === 'native';
  const decided: NativeChoices = {
    convInputs: (geo) => chosen(nativeConvInputKey(geo, settings.batch)),
    maxPools: (geo) => chosen(nativeMaxPoolKey(geo, settings.batch)),
  };
  if (settings.native) {
    const nativeKeys: string[] = [];
    let nativeMeasured = false;
    for (const node of [...graph.nodes].reverse()) {
      const conv = node.op_type === 'Conv' && needsInputGradient(node.input[0] as string, graph);
      const pool = node.op_type === 'MaxPool' && tiles(maxPoolGeometryOf(graph, node));
      if (!conv && !pool) continue;
      // The node's geometry once: its cache key, its description, and the trial that turns only it native.
      let key: string;
      let what: string;
      let trial: (choice: NativeOrOrt) => NativeChoices;
      if (conv) {
        const geo = convGeometryOf(graph, node);
        key = nativeConvInputKey(geo, settings.batch);
        what = `${describeConv(geo)} input gradient`;
        trial = (choice) => ({
          ...decided,
          convInputs: (other) => (sameGeometry(other, geo) ? choice === 'native' : decided.convInputs(other)),
        });
      } else {
        const geo = maxPoolGeometryOf(graph, node);
        key = nativeMaxPoolKey(geo, settings.batch);
        what = describePool(geo);
        trial = (choice) => ({
          ...decided,
          maxPools: (other) => (sameGeometry(other, geo) ? choice === 'native' : decided.maxPools(other)),
        });
      }
      nativeKeys.push(key);
      const timed = await settle({
        key,
        allowed: NATIVE_OR_ORT,
        what: `${what}, native or ORT`,
        measure: () => timeNativeChoices(module, settings.batch, rules, trial),
      });
      nativeMeasured ||= timed;
    }
    measured ||= nativeMeasured;
    // One at a time, from the loss down, a node's native kernel is timed with everything below it in ORT,
    // where it costs a cut of its own; once the chain below turned native it would have joined it (resnet's
    // 4×4 blocks: kept in ORT, 11% slower than all native). So the picks are checked against every start native.
    const everyStart: NativeChoices = {
      convInputs: (geo) => nativeKeys.includes(nativeConvInputKey(geo, settings.batch)),
      maxPools: (geo) => nativeKeys.includes(nativeMaxPoolKey(geo, settings.batch)),
    };
    if (nativeMeasured && nativeKeys.some((key) => !chosen(key))) {
      const times = await timeNativeChoices(module, settings.batch, rules, (choice) =>
        choice === 'native' ? everyStart : decided,
      );
      const [picked, allNative] = times === 'same' ? [0, 0] : [times.get('ort'), times.get('native')];
      // A 2% margin: the two are timed in alternating rounds, but a flip is cached.
      if (picked !== undefined && allNative !== undefined && allNative < 0.98 * picked) {
        for (const key of nativeKeys) {
          choices.set(key, 'native');
          // A key its neighbours decided ('same') stays uncached, so a change in them gets it measured.
          if (cached.has(key)) cached.set(key, 'native');
        }
        settings.onNotice?.(
          `autotune: every native start beats the one-at-a-time picks (${allNative.toFixed(2)} vs ${picked.toFixed(2)} ms a step): all native`,
        );
      }
    }
  }
  // An unusable cache never stops training: one line says so, and the choices just measured are used unsaved.
  const unsaved = measured ? (unusable ?? (await writeChoices(settings.cacheDir, cached))) : undefined;
  if (unsaved)
    settings.onNotice?.(
      `autotune: cannot use the cache ${join(settings.cacheDir, CACHE_FILE)} (${unsaved}); training with the choices just measured, unsaved`,
    );
  return { rules, choices, nativeGradients: settings.native ? decided : undefined };
}

/** A Conv's input needs a gradient unless it is the images themselves. */
function needsInputGradient(x: string, graph: { inputs: { name: string }[] }): boolean {
  return !graph.inputs.some((i) => i.name === x);
}

function describePool(geo: MaxPoolGeometry): string {
  return `max-pool ${geo.kernel.join('×')} on ${geo.input.join('×')}`;
}

function describeConv(geo: ConvGeometry): string {
  const [c, h, w] = geo.input;
  const [m] = geo.output;
  return `conv ${c}→${m} ${geo.kernel.join('×')} on ${h}×${w} (stride ${geo.strides[0]}, pad ${geo.pads[0]})`;
}
