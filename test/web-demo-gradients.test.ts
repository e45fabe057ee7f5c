/**
 * Saliency, Grad-CAM, adversarial digits and the embedding view in headless Debian Chromium against the real
 * server (the cnn fixture, digits drawn with real mouse events). The page's maps are held to
 * onnxruntime-node running the same gradient model (itself held to finite differences and PyTorch in
 * explain-gradients.test.ts), its adversarial digit is re-read by onnxruntime-node.
 * Screenshots go to test/helpers/screenshots.ts's folder (docs/lab-*.png are copied from there by hand).
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
import { sharedWebDemo } from '../testkit/web-demo-build.ts';
import type { AttackState } from '../web-demo/src/lab/attack-panel.ts';
import type { EmbeddingState } from '../web-demo/src/lab/embedding-panel.ts';
import { frameOf } from '../web-demo/src/lab/scatter.ts';
import type { WhyState } from '../web-demo/src/lab/why-panel.ts';
import { chromiumPath, DIGITS, drawStrokes, launch, noHorizontalOverflow, openDrawPage } from './helpers/browser.ts';
import { screenshotPath } from './helpers/screenshots.ts';

const FIXTURE = 'test/fixtures/models/cnn/1/model.onnx';
/** The page's float32 wasm run vs onnxruntime-node's CPU run of the same graph: error ≤ this × largest. */
const TOLERANCE = 1e-4;

interface DemoState {
  ready: boolean;
  prediction?: number;
  input?: number[];
  why: WhyState;
  attack: AttackState;
  embedding: EmbeddingState;
}
const demo = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxError = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
type Box = { x: number; y: number; width: number; height: number };

describe.skipIf(!chromiumPath)('gradients in the page (Chromium)', () => {
  let server: RunningServer;
  let browser: Browser;
  let node: GradientSession;
  const tmp = mkdtempSync(join(tmpdir(), 'web-demo-gradients-'));

  beforeAll(async () => {
    const webRoot = await sharedWebDemo();
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
      const cam = want.cam?.map ?? [];
      expect(maxError(shown.cam ?? [], cam), `Grad-CAM of ${shown.class}`).toBeLessThan(TOLERANCE * maxAbs(cam) + 1e-7);
      expect(shown.cam?.length).toBe(784);
    });
  }

  /**
   * One draw page for both tests (each starts from a cleared pad): a page opens in ~2 s of onnxruntime-web
   * start-up, so it is opened once, by whichever test runs first.
   */
  let shared: ReturnType<typeof openDrawPage> | undefined;
  const sharedPage = () => {
    shared ??= openDrawPage(browser, server.url);
    return shared;
  };

  it('after a stroke: saliency and Grad-CAM of the answer, and of a picked digit, equal onnxruntime-node', async () => {
    const { page, errors } = await sharedPage();
    await page.click('#clear');
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));
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
    // The pad and "Why this answer?" (not the explainer below it).
    const main = (await page.locator('main').boundingBox()) as Box;
    const whyBox = (await page.locator('#why').boundingBox()) as Box;
    await page.screenshot({
      path: screenshotPath('lab-saliency.png'),
      clip: { x: main.x, y: main.y, width: main.width, height: whyBox.y + whyBox.height - main.y + 8 },
    });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await noHorizontalOverflow(page)).toBe(true);
    // On a phone the pad sticks to the top of the screen; unstuck for the picture of the section alone.
    await page.addStyleTag({ content: '.pad { position: static !important; }' });
    await page.locator('#why').screenshot({ path: screenshotPath('lab-saliency-phone.png') });
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
    expect(await page.textContent('#attack-status')).toContain(
      `is ${result.epsilon.toFixed(5)} (at ${result.failedAt?.toFixed(5)} it still reads 7)`,
    );
    console.log(
      `FGSM flips the drawn 7 to ${result.prediction} at ε = ${result.epsilon.toFixed(4)} (${attack.ms?.toFixed(0)} ms)`,
    );
    await page.locator('#attack').screenshot({ path: screenshotPath('lab-adversarial.png') });

    // The attacked digit goes to the pad, the explainer and "Why this answer?".
    const whyRuns = (await demo(page)).why.runs;
    await page.click('#attack-explain');
    await page.waitForFunction((r) => (window as unknown as { demo: DemoState }).demo.why.runs > r, whyRuns);
    ({ why } = await demo(page));
    expect(why.input).toEqual(result.image);
    expect(why.predicted).toBe(result.prediction);
    await expectMapsMatchNode(why);
    expect(errors).toEqual([]);
  }, 180_000);

  it('the embedding: 300 test digits in 2-D, neighbours share labels; hover shows a digit; the drawing is placed', async () => {
    const { page, errors } = await sharedPage();
    await page.setViewportSize({ width: 1000, height: 1400 });
    await page.click('#clear');
    // As a fresh page is: at the top (the other test may leave it scrolled, or smooth-scrolling to the pad).
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));
    await drawStrokes(page, DIGITS[7] as [number, number][][]);
    await page.waitForFunction(() => (window as unknown as { demo: DemoState }).demo.prediction === 7);
    await page.fill('#embed-count', '300');
    await page.click('#embed-run');
    // UMAP runs in the worker: the page keeps drawing frames meanwhile.
    expect(await page.evaluate(() => (window as unknown as { demo: DemoState }).demo.embedding.running)).toBe(true);
    expect(await page.evaluate(() => new Promise<number>((r) => requestAnimationFrame(() => r(1))))).toBe(1);
    await page.waitForFunction(
      () => {
        const e = (window as unknown as { demo: DemoState }).demo.embedding;
        return (e.points !== undefined && e.drawn !== undefined) || e.error !== undefined;
      },
      undefined,
      { timeout: 120_000 },
    );
    const { embedding } = await demo(page);
    expect(embedding.error).toBeUndefined();
    const points = embedding.points as number[];
    const labels = embedding.labels as number[];
    expect(labels.length).toBe(300);
    expect(points.length).toBe(600);
    expect(embedding.features).toBe('Flatten_6_out0');
    expect(embedding.dims).toBe(320);
    // UMAP keeps the classifier's classes apart: most points' 5 nearest neighbours in 2-D share their label.
    const agreement = neighbourAgreement(points, labels, 5);
    console.log(
      `embedding of 300: 5-NN label agreement ${agreement.toFixed(3)}; features ${embedding.featureSeconds?.toFixed(2)} s, UMAP ${embedding.fitSeconds?.toFixed(2)} s`,
    );
    expect(agreement).toBeGreaterThan(0.8);
    // The canvas holds the points (coloured pixels, not just the white background).
    const coloured = await page.$eval('#embed-canvas', (c) => {
      const canvas = c as HTMLCanvasElement;
      const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if ((data[i + 3] as number) > 0) n++;
      return n;
    });
    expect(coloured).toBeGreaterThan(300);
    // The drawn 7 lands among 7s.
    const drawn = embedding.drawn as { point: [number, number]; prediction: number };
    expect(drawn.prediction).toBe(7);
    const near = nearestLabels(points, labels, drawn.point, 10);
    expect(near.filter((l) => l === 7).length).toBeGreaterThan(5);
    // Hovering a point shows its digit.
    await page.locator('#embed-canvas').scrollIntoViewIfNeeded();
    const box = (await page.locator('#embed-canvas').boundingBox()) as { x: number; y: number; width: number };
    const frame = frameOf([...points, ...drawn.point], box.width, box.width);
    const target = labels.indexOf(0);
    const [x, y] = frame.toCanvas(points[2 * target] as number, points[2 * target + 1] as number);
    await page.mouse.move(box.x + x, box.y + y);
    await page.waitForFunction(() => (window as unknown as { demo: DemoState }).demo.embedding.hovered !== undefined);
    const hovered = (await demo(page)).embedding.hovered as number;
    expect(labels[hovered]).toBe(0);
    expect(await page.isVisible('.embed-tip')).toBe(true);
    expect(await page.textContent('.embed-tip')).toContain(`a 0 (test #${hovered})`);
    await page.locator('#embedding').screenshot({ path: screenshotPath('lab-embedding.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await noHorizontalOverflow(page)).toBe(true);
    await page.addStyleTag({ content: '.pad { position: static !important; }' });
    await page.locator('#embedding').screenshot({ path: screenshotPath('lab-embedding-phone.png') });
    await page.setViewportSize({ width: 1000, height: 1400 });
    expect(errors).toEqual([]);
  }, 180_000);
});

/** The share of points whose k nearest others (2-D) mostly share their label. */
function neighbourAgreement(points: number[], labels: number[], k: number): number {
  let agree = 0;
  labels.forEach((label, i) => {
    const near = nearestLabels(points, labels, [points[2 * i] as number, points[2 * i + 1] as number], k, i);
    if (near.filter((l) => l === label).length > k / 2) agree++;
  });
  return agree / labels.length;
}

function nearestLabels(points: number[], labels: number[], [x, y]: [number, number], k: number, skip = -1): number[] {
  return labels
    .map((label, j) => ({
      label,
      d: j === skip ? Infinity : ((points[2 * j] as number) - x) ** 2 + ((points[2 * j + 1] as number) - y) ** 2,
    }))
    .sort((a, b) => a.d - b.d)
    .slice(0, k)
    .map((n) => n.label);
}
