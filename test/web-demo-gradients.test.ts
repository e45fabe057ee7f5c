/**
 * Saliency, Grad-CAM, adversarial digits and the embedding view in headless Debian Chromium against the real
 * server (the cnn fixture, digits drawn with real mouse events). The page's maps are held to
 * onnxruntime-node running the same gradient model (itself held to finite differences and PyTorch in
 * explain-gradients.test.ts), its adversarial digit is re-read by onnxruntime-node.
 * Screenshots go to test-results/ (docs/lab-*.png are copied from there by hand when the views change).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fgsm } from '../core/explain-gradients/adversarial.ts';
import { explainImage } from '../core/explain-gradients/explain-image.ts';
import { GradientSession } from '../core/explain-gradients/session.ts';
import { nodeRuntime } from '../node/execution.ts';
import { decodeModel } from '../onnx/codec.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { buildWebDemo } from '../testkit/web-demo-build.ts';
import type { AttackState } from '../web-demo/src/lab/attack-panel.ts';
import type { WhyState } from '../web-demo/src/lab/why-panel.ts';
import { chromiumPath, DIGITS, drawStrokes, launch } from './helpers/browser.ts';

const FIXTURE = 'test/fixtures/models/cnn/1/model.onnx';
/** The page's float32 wasm run vs onnxruntime-node's CPU run of the same graph: error ≤ this × largest. */
const TOLERANCE = 1e-4;

interface DemoState {
  ready: boolean;
  prediction?: number;
  input?: number[];
  why: WhyState;
  attack: AttackState;
}
const demo = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxError = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
const noHorizontalOverflow = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

describe.skipIf(!chromiumPath)('gradients in the page (Chromium)', () => {
  let server: RunningServer;
  let browser: Browser;
  let node: GradientSession;
  const tmp = mkdtempSync(join(tmpdir(), 'web-demo-gradients-'));

  beforeAll(async () => {
    const webRoot = join(tmp, 'web');
    await buildWebDemo(webRoot);
    const models = join(tmp, 'models');
    mkdirSync(join(models, 'cnn', '1'), { recursive: true });
    copyFileSync(FIXTURE, join(models, 'cnn', '1', 'model.onnx'));
    server = await startServer({ models, port: 0, webRoot });
    browser = await launch();
    node = await GradientSession.create(nodeRuntime, decodeModel(readFileSync(FIXTURE)));
  }, 120_000);

  afterAll(async () => {
    await node?.release();
    await browser?.close();
    await server?.close();
  });

  /** onnxruntime-node's reading of a 28×28 raw image (the fixture has normalization folded). */
  async function nodeReads(image: Float32Array): Promise<number> {
    const logits = await node.logits(image);
    return logits.indexOf(Math.max(...logits));
  }

  /** FGSM at ε by onnxruntime-node, to check the page's bracket from below. */
  async function fgsmAt(clean: Float32Array, epsilon: number): Promise<Float32Array> {
    const label = await nodeReads(clean);
    return (await fgsm(node, clean, { label }, epsilon)).image;
  }

  /** The page's maps for its own input equal onnxruntime-node's for the same pixels and classes. */
  async function expectMapsMatchNode(why: WhyState): Promise<void> {
    const input = Float32Array.from(why.input as number[]);
    const expected = await explainImage(
      node,
      input,
      why.shown.map((s) => s.class),
    );
    why.shown.forEach((shown, i) => {
      const want = expected.classes[i];
      if (!want) throw new Error('missing class');
      expect(shown.class).toBe(want.class);
      expect(maxError(shown.saliency, want.saliency), `saliency of ${shown.class}`).toBeLessThan(
        TOLERANCE * maxAbs(want.saliency),
      );
      expect(maxError(shown.cam, want.cam), `Grad-CAM of ${shown.class}`).toBeLessThan(
        TOLERANCE * maxAbs(want.cam) + 1e-7,
      );
    });
  }

  it('after a stroke: saliency and Grad-CAM of the answer, and of a picked digit, equal onnxruntime-node', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/?ep=wasm&model=cnn/1`);
    await page.waitForFunction(() => (window as unknown as { demo: DemoState }).demo.ready, undefined, {
      timeout: 60_000,
    });
    await drawStrokes(page, DIGITS[7] as [number, number][][]);
    await page.waitForFunction(
      () => {
        const w = (window as unknown as { demo: DemoState }).demo.why;
        return (w.shown.length > 0 && w.input !== undefined) || w.error !== undefined;
      },
      undefined,
      { timeout: 60_000 },
    );
    let { why, prediction, input } = await demo(page);
    expect(why.error).toBeUndefined();
    expect(prediction).toBe(7);
    expect(why.predicted).toBe(7);
    expect(why.input).toEqual(input);
    expect(why.shown.map((s) => s.class)).toEqual([7]);
    expect(maxAbs(why.shown[0]?.cam ?? [])).toBeGreaterThan(0);
    await expectMapsMatchNode(why);
    expect(await page.$$eval('#why-rows canvas', (c) => c.length)).toBe(2);

    // "Why not a 9?"
    const runs = why.runs;
    await page.click('#why-picker button[data-digit="9"]');
    await page.waitForFunction((r) => (window as unknown as { demo: DemoState }).demo.why.runs > r, runs);
    ({ why } = await demo(page));
    expect(why.shown.map((s) => s.class)).toEqual([7, 9]);
    await expectMapsMatchNode(why);
    expect(await page.textContent('#why-rows')).toContain('Why not a 9');

    // Over the drawing.
    await page.selectOption('#why-overlay', 'cam');
    expect(await page.isVisible('.pad-overlay')).toBe(true);
    await page.locator('main').screenshot({ path: 'test-results/lab-saliency.png' });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await noHorizontalOverflow(page)).toBe(true);
    await page.screenshot({ path: 'test-results/lab-saliency-phone.png', fullPage: true });
    await page.setViewportSize({ width: 1000, height: 1400 });

    // Adversarial: the smallest FGSM ε that flips the 7; onnxruntime-node reads the page's image the same.
    ({ why } = await demo(page));
    const clean = Float32Array.from(why.input as number[]);
    await page.click('#attack-search');
    await page.waitForFunction(
      () => {
        const a = (window as unknown as { demo: DemoState }).demo.attack;
        return !a.running && (a.result !== undefined || a.none || a.error !== undefined);
      },
      undefined,
      { timeout: 60_000 },
    );
    const { attack } = await demo(page);
    expect(attack.error).toBeUndefined();
    const result = attack.result as NonNullable<AttackState['result']>;
    expect(attack.label).toBe(7);
    expect(result.flipped).toBe(true);
    expect(result.mode).toBe('smallest');
    const image = Float32Array.from(result.image);
    expect(maxError(image, clean)).toBeLessThanOrEqual(result.epsilon + 1e-6);
    expect(await nodeReads(image)).toBe(result.prediction);
    expect(result.prediction).not.toBe(7);
    expect(await nodeReads(await fgsmAt(clean, result.failedAt as number))).toBe(7);
    expect(await page.textContent('#attack-status')).toContain(`is ${result.epsilon.toFixed(4)}`);
    console.log(
      `FGSM flips the drawn 7 to ${result.prediction} at ε = ${result.epsilon.toFixed(4)} (${attack.ms?.toFixed(0)} ms)`,
    );
    await page.locator('#attack').screenshot({ path: 'test-results/lab-adversarial.png' });

    // The attacked digit goes to the pad, the explainer and "Why this answer?".
    const whyRuns = (await demo(page)).why.runs;
    await page.click('#attack-explain');
    await page.waitForFunction((r) => (window as unknown as { demo: DemoState }).demo.why.runs > r, whyRuns);
    ({ why } = await demo(page));
    expect(why.input).toEqual(result.image);
    expect(why.predicted).toBe(result.prediction);
    await expectMapsMatchNode(why);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});
