/**
 * The demo's CNN explainer and polish in headless Debian Chromium against the real server: models trained
 * by our pipeline (the simple CNN fixture; Inception and ResNet one short epoch), digits drawn with real
 * mouse events. The expected layer counts come from the ONNX graphs' nodes, the expected values from
 * onnxruntime-node, the expected receptive fields from the architecture worked out by hand.
 */

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../core/contract.ts';
import { explainModel } from '../core/deploy/explain.ts';
import { preprocessRgba } from '../core/digits/digit.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { exportRun } from '../export/export-run.ts';
import { loadMnist, take } from '../node/mnist.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import { describeModel } from '../onnx/describe.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { PHOTO_CONDITIONS, photoOf } from '../testkit/photo-digits.ts';
import { sharedWebDemo } from '../testkit/web-demo-build.ts';
import { trainRun } from '../train/loop.ts';
import { chromiumPath, DIGITS, drawStrokes, launch, padRead } from './helpers/browser.ts';

interface ExplainLayerState {
  output: string;
  label: string;
  dims: number[];
  values: Record<string, number>;
}
interface Box {
  top: number;
  left: number;
  bottom: number;
  right: number;
}
interface Hover {
  output: string;
  channel: number;
  y: number;
  x: number;
  field?: Box;
  kernel?: number[];
}
interface DemoState {
  ready: boolean;
  prediction?: number;
  input?: number[];
  explain: { model?: string; runs: number; layers: ExplainLayerState[]; hover?: Hover };
}

const MODELS = ['cnn', 'inception', 'resnet'] as const;
/** Ops that compute on the image: each node of these is one heat map (Flatten, Concat, Identity move data only). */
const COMPUTING_OPS = ['Conv', 'MaxPool', 'AveragePool', 'Relu', 'Add', 'Gemm', 'Softmax'];

if (!chromiumPath) console.warn('skipping the explainer tests: Debian chromium is not installed');

describe.skipIf(!chromiumPath)('the CNN explainer in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  let repo: string;
  const file = (name: string) => join(repo, name, '1', 'model.onnx');

  beforeAll(async () => {
    const building = sharedWebDemo();
    repo = mkdtempSync(join(tmpdir(), 'models-'));
    mkdirSync(join(repo, 'cnn', '1'), { recursive: true });
    copyFileSync('test/fixtures/models/cnn/1/model.onnx', file('cnn'));
    // Inception and ResNet: one short epoch on a few hundred images, exported by our pipeline.
    const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
    const small = take(test, 200);
    for (const model of ['inception', 'resnet'] as const) {
      const dir = mkdtempSync(join(tmpdir(), `explain-run-${model}-`));
      await trainRun({
        config: { ...TUTORIAL_RECIPE, model, epochs: 1, lr: 0.05, limit: 640 },
        dir,
        data: { train, test: small },
      });
      await exportRun({ run: dir, out: repo, version: 1, test: small });
    }
    server = await startServer({ models: repo, port: 0, webRoot: await building });
    browser = await launch();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const demo = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);

  async function open(): Promise<{ page: Page; console: string[]; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const lines: string[] = [];
    const errors: string[] = [];
    page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => (window as unknown as { demo?: DemoState }).demo?.ready, undefined, {
      timeout: 60_000,
    });
    return { page, console: lines, errors };
  }

  /**
   * One page for the tests that drive it fully themselves (they select the model, clear the pad, upload their
   * photos): a page opens in ~2 s of onnxruntime-web start-up, so it is opened once, not per test. The test
   * of the empty page opens its own.
   */
  let shared: ReturnType<typeof open> | undefined;
  const sharedPage = () => {
    shared ??= open();
    return shared;
  };

  /** Select a model, draw a 7 and wait for the explainer to show that model's layers. */
  async function drawWith(page: Page, model: string): Promise<DemoState> {
    await page.click('#clear');
    await page.selectOption('#model', `${model}/1`);
    // As a fresh page is: at the top (the shared page may be left scrolled by the hover test).
    await page.evaluate(() => window.scrollTo({ top: 0, behavior: 'instant' }));
    const before = (await demo(page)).explain.runs;
    await drawStrokes(page, DIGITS[7] as [number, number][][]);
    await page.waitForFunction(
      ([name, n]) => {
        const e = (window as unknown as { demo: DemoState }).demo.explain;
        return e.model === name && e.runs > (n as number);
      },
      [model, before] as const,
      { timeout: 60_000 },
    );
    await padRead(page);
    return demo(page);
  }

  /** Every layer's values for `input`, from onnxruntime-node running the explain variant of the served file. */
  async function nodeLayers(model: string, input: Float32Array) {
    const served = decodeModel(readFileSync(file(model)));
    const dims = [1, 1, IMAGE_SIDE, IMAGE_SIDE];
    const explained = await ort.InferenceSession.create(encodeModel(explainModel(served).model));
    const plain = await ort.InferenceSession.create(encodeModel(served));
    try {
      const out = await explained.run({ input: new ort.Tensor('float32', input, dims) });
      const reference = await plain.run({ input: new ort.Tensor('float32', input.slice(), dims) });
      return { out, probabilities: Array.from((reference.probabilities?.data ?? []) as Float32Array) };
    } finally {
      await Promise.all([explained.release(), plain.release()]);
    }
  }

  it("cnn, inception, resnet: one heat map per layer output, blocks as branches, every value equal to onnxruntime-node's", async () => {
    const { page, errors } = await sharedPage();
    for (const model of MODELS) {
      const ops = describeModel(decodeModel(readFileSync(file(model)))).ops;
      const expected = COMPUTING_OPS.reduce((sum, op) => sum + (ops[op] ?? 0), 0);
      const state = await drawWith(page, model);
      expect(state.prediction, model).toBeDefined();
      expect(await page.locator('#explainer canvas.heatmap').count(), model).toBe(expected);
      expect(state.explain.layers, model).toHaveLength(expected);

      const blocks = await page.locator('#explainer .block').count();
      const branches = await page.locator('#explainer .block .branch').count();
      const shortcuts = await page.locator('#explainer .block .shortcut').count();
      expect({ blocks, branches, shortcuts }, model).toEqual(
        {
          cnn: { blocks: 0, branches: 0, shortcuts: 0 },
          inception: { blocks: 2, branches: 8, shortcuts: 0 }, // two InceptionA modules of 4 branches
          resnet: { blocks: 2, branches: 4, shortcuts: 2 }, // two residual blocks: branch + identity shortcut
        }[model],
      );

      // The values: the page's, from onnxruntime-web, against onnxruntime-node on the same 28×28 input.
      const input = Float32Array.from(state.input ?? []);
      expect(input).toHaveLength(IMAGE_PIXELS);
      const { out, probabilities } = await nodeLayers(model, input);
      for (const layer of state.explain.layers) {
        const want = out[layer.output]?.data as Float32Array;
        const got = Object.values(layer.values);
        expect(got, `${model} ${layer.label}`).toHaveLength(want.length);
        const scale = Math.max(1, ...Array.from(want, Math.abs));
        const worst = Math.max(...got.map((v, i) => Math.abs(v - (want[i] as number))));
        expect(worst / scale, `${model} ${layer.label}`).toBeLessThan(1e-4);
      }
      // The last heat map is the served model's own probabilities.
      const last = Object.values(state.explain.layers.at(-1)?.values ?? {});
      expect(last).toHaveLength(10);
      probabilities.forEach((p, i) => {
        expect(Math.abs(p - (last[i] as number))).toBeLessThan(1e-5);
      });
    }
    expect(errors).toEqual([]);
  }, 240_000);

  it("hovering a feature map lights up the cell's receptive field on the input and shows its kernel", async () => {
    const { page } = await sharedPage();
    const state = await drawWith(page, 'cnn');
    // The simple CNN's layers by hand: conv1, pool, relu, conv2, pool, relu, fc, softmax.
    expect(state.explain.layers.map((l) => l.label)).toEqual([
      'conv1',
      'maxpool',
      'relu',
      'conv2',
      'maxpool',
      'relu',
      'fc',
      'softmax',
    ]);
    const [conv1, , , conv2, pool2] = state.explain.layers;
    // Worked out by hand for conv5 → pool2 → conv5 → pool2 (no padding): a conv1 cell sees 5×5 pixels
    // from (y, x); a conv2 cell 5 + 1 (pool) + 4·2 = 14 pixels from (2y, 2x); after pool2, 16 from (4y, 4x).
    const cases = [
      { layer: conv1, size: 5, jump: 1, kernel: [1, 5, 5] },
      { layer: conv2, size: 14, jump: 2, kernel: [10, 5, 5] },
      { layer: pool2, size: 16, jump: 4, kernel: undefined },
    ];
    for (const { layer, size, jump, kernel } of cases) {
      const canvas = page.locator(`#explainer .layer[data-output="${layer?.output}"] canvas`);
      await canvas.scrollIntoViewIfNeeded();
      const box = await canvas.boundingBox();
      if (!box) throw new Error('no heat map');
      // Inside the first tile (channel 0), a little right of and below its first cell.
      await page.mouse.move(box.x + box.width * 0.025, box.y + box.height * 0.2);
      await page.waitForFunction(
        (output) => (window as unknown as { demo: DemoState }).demo.explain.hover?.output === output,
        layer?.output,
      );
      const hover = (await demo(page)).explain.hover as Hover;
      const clip = (v: number) => Math.min(IMAGE_SIDE - 1, v);
      expect(hover.field, layer?.label).toEqual({
        top: jump * hover.y,
        left: jump * hover.x,
        bottom: clip(jump * hover.y + size - 1),
        right: clip(jump * hover.x + size - 1),
      });
      expect(hover.kernel).toEqual(kernel);
      // The highlight on the 28×28 input covers those pixels.
      const frame = await page.locator('#explainer .frame').boundingBox();
      const field = await page.locator('#explainer .field').boundingBox();
      if (!frame || !field) throw new Error('no receptive field shown');
      const pixel = frame.width / IMAGE_SIDE;
      const f = hover.field as Box;
      expect(field.width / pixel).toBeCloseTo(f.right - f.left + 1, 0);
      expect((field.x - frame.x) / pixel).toBeCloseTo(f.left, 0);
      expect(await page.locator('.kernel-view').isVisible()).toBe(kernel !== undefined);
    }
  }, 120_000);

  it('reads the photo set through the browser path: the page gives the same 28×28 as the module in Node', async () => {
    // One photo per condition (testkit/photo-digits.ts), as PNG uploads through "Use a photo". The ≥ 95%
    // reading of the set is proven in Node (test/photo-preprocess.test.ts); here the browser's decoding
    // (createImageBitmap, canvas) and its copy of the module must produce the same model input.
    const { page } = await sharedPage();
    const test = await loadMnist('test');
    let compared = 0;
    for (const [k, condition] of PHOTO_CONDITIONS.entries()) {
      const photo = photoOf(test.images.subarray(k * IMAGE_PIXELS, (k + 1) * IMAGE_PIXELS), condition, 100 + k);
      const png = new PNG({ width: photo.width, height: photo.height });
      png.data.set(photo.rgba);
      const expected = preprocessRgba(photo.rgba, photo.width, photo.height);
      const before = (await demo(page)).explain.runs;
      await page.setInputFiles('#photo', {
        name: `${condition}.png`,
        mimeType: 'image/png',
        buffer: PNG.sync.write(png),
      });
      await page.waitForFunction((n) => (window as unknown as { demo: DemoState }).demo.explain.runs > n, before);
      const input = (await demo(page)).input ?? [];
      expect(input.length, condition).toBe(IMAGE_PIXELS);
      const worst = Math.max(...input.map((v, i) => Math.abs(v - (expected[i] as number))));
      expect(worst, condition).toBeLessThan(1e-5);
      compared++;
    }
    expect(compared).toBe(PHOTO_CONDITIONS.length);
  }, 180_000);

  it('empty: a "draw here" hint, no bars; a favicon; "Use a photo" reads a photo; at most one console line without WebGPU', async () => {
    const { page, console: lines, errors } = await open();
    expect(await page.locator('#hint').isVisible()).toBe(true);
    expect(await page.locator('#hint').textContent()).toMatch(/draw/i);
    expect(await page.locator('#bars .bar').first().isVisible()).toBe(false);
    expect(await page.locator('#explainer').isVisible()).toBe(false);
    const icon = await page.evaluate(async () => {
      const href = document.querySelector<HTMLLinkElement>('link[rel="icon"]')?.href ?? '';
      const response = await fetch(href);
      return { status: response.status, type: response.headers.get('content-type') };
    });
    expect(icon).toEqual({ status: 200, type: expect.stringMatching(/^image\/svg\+xml/) });

    // MNIST's first test digit (a 7) as a 280×280 photo: dark ink on light grey paper.
    const test = await loadMnist('test');
    const pixels = Buffer.from(test.images.subarray(0, IMAGE_PIXELS).map((v) => 225 - Math.round(v * 0.8)));
    const png = await sharp(pixels, { raw: { width: IMAGE_SIDE, height: IMAGE_SIDE, channels: 1 } })
      .resize(280, 280, { kernel: 'cubic' })
      .png()
      .toBuffer();
    const before = (await demo(page)).explain.runs;
    await page.setInputFiles('#photo', { name: 'seven.png', mimeType: 'image/png', buffer: png });
    await page.waitForFunction((n) => (window as unknown as { demo: DemoState }).demo.explain.runs > n, before);
    expect((await demo(page)).prediction).toBe(test.labels[0]);
    expect(await page.locator('#hint').isHidden()).toBe(true);
    expect(await page.locator('#bars .bar').first().isVisible()).toBe(true);
    expect(await page.locator('#explainer').isVisible()).toBe(true);
    await page.click('#clear');
    expect(await page.locator('#hint').isVisible()).toBe(true);

    expect(errors).toEqual([]);
    // Headless Chromium here has no GPU adapter: one line may say so (and that the models run on wasm).
    expect(lines.filter((l) => !l.startsWith('debug')).length).toBeLessThanOrEqual(1);
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
    await page.close();
  }, 120_000);
});
