/**
 * The web demo end to end in headless Debian Chromium against the real server: hand-drawn digits
 * (real mouse events) read by a model trained with the tutorial's recipe, in the browser (wasm and
 * WebGPU on the software adapter) and through the server.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVariant } from '../core/deploy/precision.ts';
import { writeModelFile } from '../node/files.ts';
import { decodeModel } from '../onnx/codec.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { sharedWebDemo } from '../testkit/web-demo-build.ts';
import { chromiumPath, DIGITS, drawStrokes, launch, padRead } from './helpers/browser.ts';
import { screenshotPath } from './helpers/screenshots.ts';

if (!chromiumPath)
  console.warn('skipping the web demo tests: Debian chromium is not installed (apt-get install chromium)');

const HOSTILE_ACCURACY = '<img src=x onerror="window.__xss=1">';

interface DemoState {
  ready: boolean;
  backend: string;
  prediction?: number;
  probabilities?: number[];
  mode?: string;
  all?: { model: string; prediction: number }[];
  runs: number;
}

describe.skipIf(!chromiumPath)('web demo in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    const webRoot = await sharedWebDemo();
    const models = mkdtempSync(join(tmpdir(), 'models-'));
    // The simple CNN trained 10 epochs with the tutorial's recipe (98.60%), exported by our pipeline.
    for (const [name, file] of [
      ['cnn', 'test/fixtures/models/cnn/1/model.onnx'],
      ['torchcnn', 'test/fixtures/torch-cnn-opset13.onnx'],
    ]) {
      mkdirSync(join(models, name as string, '1'), { recursive: true });
      copyFileSync(file as string, join(models, name as string, '1', 'model.onnx'));
    }
    // The export command's smaller variants must run in onnxruntime-web too.
    const trained = decodeModel(readFileSync('test/fixtures/models/cnn/1/model.onnx'));
    for (const variant of ['fp16', 'int8'] as const) {
      const model = makeVariant(trained, variant);
      // A publisher's metadata is text, not markup: the int8 one states its accuracy as HTML that runs script.
      if (variant === 'int8')
        for (const prop of model.metadata_props ?? []) if (prop.key === 'test_accuracy') prop.value = HOSTILE_ACCURACY;
      await writeModelFile(join(models, `cnn-${variant}`, '1', 'model.onnx'), model);
    }
    server = await startServer({ models, port: 0, webRoot });
    browser = await launch();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const demo = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);

  async function open(b: Browser, query = ''): Promise<Page> {
    const page = await b.newPage({ viewport: { width: 1000, height: 760 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/${query}`);
    await page.waitForFunction(() => (window as unknown as { demo?: DemoState }).demo?.ready, undefined, {
      timeout: 60_000,
    });
    expect(errors).toEqual([]);
    return page;
  }

  async function read(page: Page, digit: number): Promise<DemoState> {
    await page.click('#clear');
    const before = (await demo(page)).runs;
    await drawStrokes(page, DIGITS[digit] as [number, number][][]);
    await page.waitForFunction((n) => (window as unknown as { demo: DemoState }).demo.runs > n, before);
    await padRead(page);
    return demo(page);
  }

  /**
   * The six digits drawn and read on one wasm page, once per file: the wasm test checks them, the WebGPU
   * test compares its own readings of the same drawings with them instead of drawing them on wasm again, and
   * the server test goes on on the same page (a page opens in ~2 s of onnxruntime-web start-up).
   */
  let wasmReadings: Promise<{ page: Page; states: Map<number, DemoState> }> | undefined;
  const readOnWasm = () => {
    wasmReadings ??= (async () => {
      const page = await open(browser, '?ep=wasm');
      const states = new Map<number, DemoState>();
      for (const d of [0, 1, 2, 3, 4, 7]) states.set(d, await read(page, d));
      return { page, states };
    })();
    return wasmReadings;
  };

  it('reads hand-drawn 0, 1, 2, 3, 4 and 7 in the browser (wasm), showing the 28×28 preview and the bars', async () => {
    const { page, states } = await readOnWasm();
    expect((await demo(page)).backend).toBe('wasm');
    for (const [d, state] of states) {
      expect(state.prediction, `drew ${d}`).toBe(d);
      expect(state.mode).toBe('browser');
    }
    expect(await page.textContent('#digit')).toBe('7');
    expect(await page.textContent('#status')).toMatch(/wasm in the browser: \d+\.\d+ ms/);
    await page.screenshot({ path: screenshotPath('web-demo.png') });
  }, 120_000);

  it('reads the same digits through the server, and all models side by side (fp16 and int8 variants in the browser too)', async () => {
    // The wasm readings' page, once they are made (each reading clears the pad first).
    const { page } = await readOnWasm();
    await page.check('#server');
    for (const d of [1, 4, 7]) {
      const state = await read(page, d);
      expect(state.prediction, `drew ${d}`).toBe(d);
      expect(state.mode).toBe('server');
    }
    expect(await page.textContent('#status')).toMatch(/server: \d+\.\d+ ms round trip/);
    await page.check('#all');
    await page.waitForFunction(() => ((window as unknown as { demo: DemoState }).demo.all?.length ?? 0) === 4);
    const all = (await demo(page)).all ?? [];
    expect(all.map((a) => a.model)).toEqual(['cnn', 'cnn-fp16', 'cnn-int8', 'torchcnn']);
    expect(await page.locator('#table tr').count()).toBe(5);
    // Labels are text: a stated accuracy shows when it is a number, the hostile one neither shows nor runs.
    const labels = await page.locator('#table tbody tr td:first-child').allTextContents();
    expect(labels[0]).toMatch(/^cnn v1 — \d+\.\d\d%$/);
    expect(labels[2]).toBe('cnn-int8 v1');
    expect(await page.locator('#table img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    // In the browser now (server mode off): the fp16 and int8 variants run in onnxruntime-web's wasm and read the 7 too.
    await page.uncheck('#server');
    const state = await read(page, 7);
    expect(state.all?.filter((a) => a.model.startsWith('cnn')).map((a) => a.prediction)).toEqual([7, 7, 7]);
    expect(await page.textContent('#status')).not.toMatch(/Error/);
  }, 120_000);

  it('WebGPU (software adapter, --enable-unsafe-webgpu) agrees with wasm', async () => {
    const gpuBrowser = await launch(['--enable-unsafe-webgpu']);
    try {
      const { states } = await readOnWasm();
      const gpu = await open(gpuBrowser, '?ep=webgpu');
      expect((await demo(gpu)).backend).toBe('webgpu');
      for (const d of [0, 7]) {
        const [a, b] = [states.get(d) as DemoState, await read(gpu, d)];
        expect(b.prediction).toBe(d);
        a.probabilities?.forEach((p, i) => {
          expect(Math.abs(p - (b.probabilities?.[i] ?? Number.NaN))).toBeLessThan(1e-4);
        });
      }
    } finally {
      await gpuBrowser.close();
    }
  }, 180_000);
});
