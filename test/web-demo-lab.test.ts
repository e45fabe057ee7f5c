/**
 * The lab, in headless Debian Chromium against the real server (one build, one server, one browser):
 * - "Where it fails": the served cnn on all 10,000 MNIST test images in a worker; the confusion matrix sums
 *   to 10,000 and its diagonal is onnxruntime-node's count of right answers on the same model and images
 *   (image by image); clicking a cell shows exactly those misread digits; clicking one loads it into the pad;
 * - the fixes: hidden downloads stay hidden, disabled buttons look disabled, fp16/int8 variants are not
 *   offered for fine-tuning, samples can be removed, a blank photo is told, nothing overflows a phone, and
 *   a fine-tuned model joins the pad's model list at once, selected;
 * - "Teach it your handwriting": digits drawn with real mouse events and labelled fine-tune the served cnn
 *   so that its answers on them change to the labels, without wrecking MNIST; the result is kept in
 *   IndexedDB, offered as a download and published to the server (one fine-tune serves all of these);
 * - /train's defaults (the quick preset) and the tutorial one click away; a small run's model joins an open
 *   draw page's list at once, selected, and reads there.
 * The ≥ 97% of the full defaults is the benchmark's to check (`npm run bench -- --what train-page`).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, IMAGE_SHAPE, NUM_CLASSES } from '../core/contract.ts';
import { METADATA_KEYS } from '../core/deploy/metadata.ts';
import { makeVariant } from '../core/deploy/precision.ts';
import { writeModelFile } from '../node/files.ts';
import { loadMnist } from '../node/mnist.ts';
import { decodeModel } from '../onnx/codec.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { sharedWebDemo } from '../testkit/web-demo-build.ts';
import type { FailureLabState } from '../web-demo/src/lab/panel.ts';
import type { TeachState } from '../web-demo/src/teach/teach.ts';
import { chromiumPath, DIGITS, drawStrokes, launch, noHorizontalOverflow, openDrawPage } from './helpers/browser.ts';
import { screenshotPath } from './helpers/screenshots.ts';

const FIXTURE = 'test/fixtures/models/cnn/1/model.onnx';

interface DemoState {
  ready: boolean;
  prediction?: number;
  input?: number[];
  lab: FailureLabState;
  explain: { runs: number };
}
const demo = (page: Page) => page.evaluate(() => (window as unknown as { demo: DemoState }).demo);
const teach = (page: Page) => page.evaluate(() => (window as unknown as { teach: TeachState }).teach);
const teachSamples = (page: Page) =>
  page.evaluate(() => (window as unknown as { teach: { samples: number } }).teach.samples);

/** onnxruntime-node's answer for each MNIST test image (raw [0, 1] pixels: the fixture has normalization folded). */
async function nodeAnswers(): Promise<{ answers: number[]; labels: Uint8Array }> {
  const test = await loadMnist('test');
  const session = await ort.InferenceSession.create(FIXTURE);
  const answers: number[] = [];
  for (let start = 0; start < test.count; start += 1000) {
    const n = Math.min(1000, test.count - start);
    const x = Float32Array.from(test.images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS), (v) => v / 255);
    const out = await session.run({ input: new ort.Tensor('float32', x, [n, ...IMAGE_SHAPE]) });
    const logits = out.logits?.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
      answers.push(row.indexOf(Math.max(...row)));
    }
  }
  await session.release();
  return { answers, labels: test.labels };
}

/** Draw a digit on the teach pad and add it; says what the page said if it was not added. */
async function addSample(page: Page, digit: number): Promise<void> {
  const before = await teachSamples(page);
  await page.locator('#teach-pad').scrollIntoViewIfNeeded();
  await drawStrokes(page, DIGITS[digit] as [number, number][][], '#teach-pad');
  await page.click('#teach-add');
  const after = await teachSamples(page);
  if (after !== before + 1) throw new Error(`sample not added: ${await page.textContent('#teach-status')}`);
}

/** A plain white photo: paper with nothing on it. */
function blankPhoto(): Buffer {
  const png = new PNG({ width: 64, height: 64 });
  png.data.fill(255);
  return PNG.sync.write(png);
}

describe.skipIf(!chromiumPath)('the lab (Chromium)', () => {
  let server: RunningServer;
  let browser: Browser;
  const tmp = mkdtempSync(join(tmpdir(), 'web-demo-lab-'));

  beforeAll(async () => {
    const webRoot = await sharedWebDemo();
    const models = join(tmp, 'models');
    mkdirSync(join(models, 'cnn', '1'), { recursive: true });
    copyFileSync(FIXTURE, join(models, 'cnn', '1', 'model.onnx'));
    // An fp16 variant as `npm run export -- --variant fp16` writes it: its precision in the metadata.
    const fp16 = makeVariant(decodeModel(readFileSync(FIXTURE)), 'fp16');
    const precision = fp16.metadata_props?.find((p) => p.key === METADATA_KEYS.precision);
    if (precision) precision.value = 'fp16 weights, fp32 compute';
    await writeModelFile(join(models, 'cnn-fp16', '1', 'model.onnx'), fp16);
    server = await startServer({ models, port: 0, webRoot, uploads: { maxBytes: 8 << 20 } });
    browser = await launch();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('the confusion matrix of cnn on 10,000 test images matches onnxruntime-node; its cells open their digits; fine-tuning on five drawn digits changes the served cnn’s answers on them to their labels', async () => {
    const { page, errors } = await openDrawPage(browser, server.url);

    // Nothing to download yet: the link is not shown. The Fine-tune button is disabled and looks it.
    expect(await page.isVisible('#teach-download')).toBe(false);
    expect(await page.isDisabled('#teach-tune')).toBe(true);
    expect(Number(await page.$eval('#teach-tune', (b) => getComputedStyle(b).opacity))).toBeLessThan(0.6);
    // The fp16 variant cannot be fine-tuned (no float weights), so it is not offered.
    await page.waitForFunction(() => (document.getElementById('teach-model') as HTMLSelectElement).options.length > 0);
    expect(await page.$$eval('#teach-model option', (o) => o.map((x) => x.textContent))).toEqual(['cnn v1']);
    // A sample added by mistake can be removed. The samples are all a "1" the user means as a 4: the served
    // model reads it as 1, so teaching (below) must change its answer.
    await page.selectOption('#teach-label', '4');
    for (const digit of [1, 7]) await addSample(page, digit);
    expect(await teachSamples(page)).toBe(2);
    await page.click('#teach-samples figure:last-child button.remove');
    expect(await teachSamples(page)).toBe(1);
    expect(await page.$$eval('#teach-samples figure', (f) => f.length)).toBe(1);
    // A photo with no digit in it is told, not silently ignored.
    await page.setInputFiles('#photo', { name: 'blank.png', mimeType: 'image/png', buffer: blankPhoto() });
    await page.waitForFunction(() => /No ink found/.test(document.getElementById('status')?.textContent ?? ''));

    // Where it fails, in the worker; the page keeps answering meanwhile.
    const [node] = await Promise.all([nodeAnswers(), page.click('#lab-run')]);
    await page.waitForFunction(() => (window as unknown as { demo: DemoState }).demo.lab.running, undefined, {
      timeout: 10_000,
    });
    const pageTurns = await page.evaluate(() => new Promise<number>((r) => requestAnimationFrame(() => r(1))));
    expect(pageTurns).toBe(1);
    await page.waitForFunction(
      () => {
        const lab = (window as unknown as { demo: DemoState }).demo.lab;
        return lab.confusion !== undefined || lab.error !== undefined;
      },
      undefined,
      { timeout: 180_000 },
    );
    const { lab } = await demo(page);
    expect(lab.error).toBeUndefined();
    const confusion = lab.confusion as number[][];
    expect(confusion.flat().reduce((a, b) => a + b, 0)).toBe(10_000);
    const diagonal = confusion.reduce((sum, row, d) => sum + (row[d] as number), 0);
    const nodeRight = node.answers.filter((a, i) => a === node.labels[i]).length;
    expect(diagonal).toBe(nodeRight);
    expect(lab.predictions).toEqual(node.answers);
    expect(lab.perClass?.[3]).toBeCloseTo(
      (100 * (confusion[3]?.[3] as number)) / (confusion[3] as number[]).reduce((a, b) => a + b),
      6,
    );
    console.log(
      `cnn fixture: ${diagonal}/10,000 right in the page and in onnxruntime-node; ${lab.seconds?.toFixed(1)} s in the worker`,
    );

    // The cell with the most misreads: its gallery shows exactly those digits.
    const [label, predicted, count] = confusion
      .flatMap((row, l) => row.map((c, p) => [l, p, l === p ? 0 : c] as const))
      .sort((a, b) => b[2] - a[2])[0] as readonly [number, number, number];
    await page.click(`#lab-matrix button[data-label="${label}"][data-predicted="${predicted}"]`);
    const shown = await page.$$eval('#lab-gallery .lab-digit', (items) =>
      items.map((i) => Number((i as HTMLElement).dataset.index)),
    );
    const expected = node.answers.flatMap((a, i) => (a === predicted && node.labels[i] === label ? [i] : []));
    expect(shown.length).toBe(Math.min(count, 60));
    expect(new Set(shown).size).toBe(shown.length);
    for (const index of shown) expect(expected).toContain(index);
    expect(await page.textContent('#lab-gallery h3')).toContain(`${count} × a ${label} read as ${predicted}`);

    // A digit of the gallery goes to the pad, read exactly as MNIST stores it, and into the explainer.
    const runs = (await demo(page)).explain.runs;
    await page.click('#lab-gallery .lab-digit');
    await page.waitForFunction((r) => (window as unknown as { demo: DemoState }).demo.explain.runs > r, runs);
    const after = await demo(page);
    const test = await loadMnist('test');
    const index = after.lab.picked as number;
    expect(index).toBe(shown[0]);
    expect(after.input).toEqual(
      Array.from(test.images.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS), (v) => Math.fround(v / 255)),
    );
    expect(after.prediction).toBe(predicted);

    // docs/lab.png is copied from the screenshot folder (test/helpers/screenshots.ts) by hand when the view changes.
    await page.locator('#lab').screenshot({ path: screenshotPath('lab.png') });
    // A phone: the matrix and the gallery fit.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await noHorizontalOverflow(page)).toBe(true);
    await page.locator('#lab').screenshot({ path: screenshotPath('lab-phone.png') });

    // Fine-tuning's payoff: the fine-tuned model joins the pad's list at once, selected; the lab's results
    // (for the served cnn) are cleared rather than shown under another model's name.
    await page.setViewportSize({ width: 1000, height: 1400 });
    for (let i = 0; i < 4; i++) await addSample(page, 1);
    expect(await teachSamples(page)).toBe(5);
    await page.click('#teach-tune');
    await page.waitForFunction(
      () => {
        const t = (window as unknown as { teach: { saved: boolean; error?: string; running: boolean } }).teach;
        return (t.saved && !t.running) || t.error !== undefined;
      },
      undefined,
      { timeout: 240_000 },
    );
    await page.waitForFunction(() =>
      /^fine-tuned cnn\//.test((document.getElementById('model') as HTMLSelectElement).value),
    );
    expect(await page.textContent('#model option:checked')).toMatch(/^fine-tuned cnn \(this browser\) — \d+\.\d\d%$/);
    expect((await demo(page)).lab.confusion).toBeUndefined();
    expect(await page.isVisible('#teach-download')).toBe(true);

    // The lesson took: the five digits now read as their label.
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
    // "Publish to the server": the fine-tuned model becomes the next version of cnn-tuned.
    await page.click('#teach-publish');
    await page.waitForFunction(() => (window as unknown as { teach: TeachState }).teach.published);
    expect((await teach(page)).published).toEqual({ model: 'cnn-tuned', version: 1 });
    expect(server.repository.versions('cnn-tuned').map((v) => v.ready)).toEqual([true]);
    await page.screenshot({ path: screenshotPath('teach.png'), fullPage: true });

    // Kept in IndexedDB: a reload offers the fine-tuned model again.
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { teach?: TeachState }).teach?.saved);
    expect(await page.textContent('#teach-results')).toMatch(/A fine-tuned cnn \(5 digits/);
    expect(errors).toEqual([]);
    await page.close();
  }, 480_000);

  it('/train: the quick defaults, the tutorial one click away; a trained model joins the open draw page at once', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const draw = await context.newPage();
    await draw.goto(`${server.url}/?ep=wasm`);
    await draw.waitForFunction(() => (window as unknown as { demo: DemoState }).demo.ready, undefined, {
      timeout: 60_000,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/train?ep=wasm`);
    const fields = () =>
      page.evaluate(() =>
        ['model', 'recipe', 'epochs', 'train-count', 'batch', 'lr', 'test-count'].map(
          (id) => (document.getElementById(id) as HTMLInputElement).value,
        ),
      );
    expect(await fields()).toEqual(['fast-cnn', 'adamw-onecycle', '1', '30000', '64', '0.01', '10000']);
    expect(await page.isVisible('#download')).toBe(false);
    expect(await page.isVisible('#use')).toBe(false);
    expect(await noHorizontalOverflow(page)).toBe(true);
    // Every select shows its options whole ("Tutorial SGD", not "Tutorial SGI").
    const cut = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLSelectElement>('.settings select')).flatMap((select) => {
        const ctx = document.createElement('canvas').getContext('2d') as CanvasRenderingContext2D;
        const style = getComputedStyle(select);
        ctx.font = `${style.fontSize} ${style.fontFamily}`;
        const room =
          select.clientWidth - Number.parseFloat(style.paddingLeft) - Number.parseFloat(style.paddingRight) - 16;
        return Array.from(select.options)
          .filter((o) => ctx.measureText(o.text).width > room)
          .map((o) => o.text);
      }),
    );
    expect(cut).toEqual([]);
    await page.click('[data-preset="tutorial"]');
    expect(await fields()).toEqual(['cnn', 'tutorial', '1', '60000', '64', '0.01', '10000']);
    await page.click('[data-preset="quick"]');

    // A small run of the defaults' model and recipe (the full one is the benchmark's).
    await page.fill('#train-count', '640');
    await page.fill('#test-count', '500');
    await page.click('#train');
    await page.waitForFunction(
      () => {
        const s = (window as unknown as { trainPage: { savedAs?: string; error?: string } }).trainPage;
        return s.savedAs !== undefined || s.error !== undefined;
      },
      undefined,
      { timeout: 180_000 },
    );
    const trained = await page.evaluate(
      () => (window as unknown as { trainPage: { savedAs?: string; error?: string; batches: number } }).trainPage,
    );
    expect(trained.error).toBeUndefined();
    expect(trained.batches).toBe(10);
    expect(await page.isVisible('#download')).toBe(true);
    expect(await page.getAttribute('#use', 'href')).toBe(`/?model=${encodeURIComponent(trained.savedAs as string)}`);
    await page.screenshot({ path: screenshotPath('train-phone.png'), fullPage: true });

    // The open draw page lists it at once, selected, and reads with it.
    await draw.waitForFunction(
      (value) => (document.getElementById('model') as HTMLSelectElement).value === value,
      trained.savedAs,
    );
    expect(await draw.textContent('#model option:checked')).toMatch(/^trained fast-cnn \(this browser\) — \d+\.\d\d%$/);
    await drawStrokes(draw, DIGITS[7] as [number, number][][]);
    await draw.waitForFunction(() => /in the browser/.test(document.getElementById('status')?.textContent ?? ''));
    expect(errors).toEqual([]);
    await context.close();
  }, 300_000);
});
