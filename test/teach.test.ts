/**
 * "Teach it your handwriting" end to end in headless Debian Chromium: digits drawn with real mouse events
 * and labelled on the draw page fine-tune the served cnn (in a worker, onnxruntime-web) so that its answers
 * on them change to the labels, without losing MNIST; the result is kept in IndexedDB and offered as a download.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { chromiumPath, DIGITS, drawStrokes, launch } from './helpers/browser.ts';

interface TeachState {
  samples: number;
  running: boolean;
  model?: string;
  before?: { answers: number[]; mnistAccuracy: number };
  after?: { answers: number[]; mnistAccuracy: number };
  saved: boolean;
  error?: string;
}

const teach = (page: Page) => page.evaluate(() => (window as unknown as { teach: TeachState }).teach);

describe.skipIf(!chromiumPath)('teach it your handwriting', () => {
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'teach-'));
    await build({
      configFile: 'web-demo/vite.config.ts',
      logLevel: 'warn',
      build: { outDir: join(tmp, 'web'), emptyOutDir: true },
    });
    mkdirSync(join(tmp, 'models', 'cnn', '1'), { recursive: true });
    copyFileSync('test/fixtures/models/cnn/1/model.onnx', join(tmp, 'models', 'cnn', '1', 'model.onnx'));
    server = await startServer({ models: join(tmp, 'models'), port: 0, webRoot: join(tmp, 'web') });
    browser = await launch();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('fine-tuning on five drawn digits changes the served cnn’s answers on them to their labels', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/?ep=wasm`);
    await page.waitForFunction(() => (window as unknown as { teach?: TeachState }).teach !== undefined);
    // A "1" the user means as a 4: the served model reads it as 1, so teaching must change its answer.
    for (let i = 0; i < 5; i++) {
      await drawStrokes(page, DIGITS[1] as [number, number][][], '#teach-pad');
      await page.selectOption('#teach-label', '4');
      await page.click('#teach-add');
    }
    expect((await teach(page)).samples).toBe(5);
    await page.click('#teach-tune');
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { teach: TeachState }).teach;
        return s.after !== undefined || s.error !== undefined;
      },
      undefined,
      { timeout: 150_000 },
    );
    const state = await teach(page);
    expect(state.error).toBeUndefined();
    expect(state.model).toBe('cnn');
    expect(state.before?.answers).toEqual([1, 1, 1, 1, 1]);
    expect(state.after?.answers).toEqual([4, 4, 4, 4, 4]);
    // Mixed with MNIST, it still reads MNIST (the fixture is 98.6% on the full test set). This lesson
    // contradicts MNIST's own 1s (12.6% of the first 1,000 test images), so some of those now read as 4:
    // measured 98.3% → 91.5%; the bound only says the model was not wrecked.
    expect(state.before?.mnistAccuracy).toBeGreaterThan(95);
    expect(state.after?.mnistAccuracy).toBeGreaterThan(85);
    await page.waitForFunction(() => (window as unknown as { teach: TeachState }).teach.saved);
    expect(await page.isVisible('#teach-download')).toBe(true);
    await page.screenshot({ path: 'test-results/teach.png', fullPage: true });

    // Kept in IndexedDB: a reload offers the fine-tuned model again.
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { teach?: TeachState }).teach?.saved);
    expect(await page.textContent('#teach-results')).toMatch(/A fine-tuned cnn \(5 digits/);
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);
});
