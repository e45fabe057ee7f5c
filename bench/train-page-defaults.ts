/**
 * The /train page's defaults, as a first-time visitor gets them: open /train in headless Debian Chromium,
 * press Train without touching a field (wasm, as on a machine without a real GPU), and time it to the
 * final test accuracy on MNIST's 10,000 test images. Fails (exit 1 through the CLI) below 97%: the
 * defaults' promise (web-demo/src/train/presets.ts). Not in the test suite: a minute or more of CPU.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../serve/server.ts';
import { launch } from '../testkit/chromium.ts';
import { buildWebDemo } from '../testkit/web-demo-build.ts';
import { PRESETS } from '../web-demo/src/train/presets.ts';
import type { BenchReport } from './report.ts';

/** What the quick preset promises on the page. */
export const DEFAULTS_MIN_ACCURACY = 97;

interface PageState {
  done: boolean;
  error?: string;
  note?: string;
  testAccuracy?: number;
  imagesPerSecond?: number;
  epochs: { testAccuracy: number }[];
}

export interface DefaultsRun {
  /** Held-out accuracy (%) of the downloadable model on the page's test images. */
  testAccuracy: number;
  /** From pressing Train to the result on the page (MNIST download, graph build, training, validation). */
  seconds: number;
  imagesPerSecond: number;
  backend: string;
}

export async function trainPageDefaults(): Promise<DefaultsRun> {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-train-page-'));
  try {
    const webRoot = join(tmp, 'web');
    await buildWebDemo(webRoot);
    mkdirSync(join(tmp, 'models'));
    const server = await startServer({ models: join(tmp, 'models'), port: 0, webRoot });
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/train?ep=wasm`);
      const started = performance.now();
      await page.click('#train');
      await page.waitForFunction(
        () => {
          const s = (window as unknown as { trainPage: PageState }).trainPage;
          return s.done || s.error;
        },
        undefined,
        { timeout: 900_000, polling: 500 },
      );
      const seconds = (performance.now() - started) / 1000;
      const s = await page.evaluate(() => (window as unknown as { trainPage: PageState }).trainPage);
      if (s.error) throw new Error(`/train failed: ${s.error}`);
      return {
        testAccuracy: s.testAccuracy ?? Number.NaN,
        seconds,
        imagesPerSecond: s.imagesPerSecond ?? Number.NaN,
        backend: s.note ?? '',
      };
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function benchTrainPage(): Promise<BenchReport> {
  const { settings, note } = PRESETS.quick;
  const run = await trainPageDefaults();
  console.log(
    `/train defaults: ${run.testAccuracy.toFixed(2)}% in ${run.seconds.toFixed(0)} s (${run.imagesPerSecond.toFixed(0)} img/s; ${run.backend})`,
  );
  const markdown = [
    '# /train with its defaults',
    '',
    `Pressing Train on /train without changing anything (${note}) in headless Debian Chromium, wasm; ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| test accuracy (10,000 images) | press to result | training images/s | backend |',
    '|---:|---:|---:|---|',
    `| ${run.testAccuracy.toFixed(2)}% | ${run.seconds.toFixed(0)} s | ${run.imagesPerSecond.toFixed(0)} | ${run.backend} |`,
    '',
  ].join('\n');
  if (!(run.testAccuracy >= DEFAULTS_MIN_ACCURACY))
    throw new Error(
      `/train's defaults reached ${run.testAccuracy.toFixed(2)}%, under the promised ${DEFAULTS_MIN_ACCURACY}%`,
    );
  return { kind: 'train-page', markdown, json: { settings, ...run } };
}
