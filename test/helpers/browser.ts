/** Headless Debian Chromium through playwright-core (never a downloaded browser); a fresh profile each launch. */
import type { Browser, CDPSession, Page } from 'playwright-core';
import { launch as launchChromium } from '../../testkit/chromium.ts';

// The launcher lives in testkit/, shared with the benchmarks (which drive the browser too).
export { chromiumPath } from '../../testkit/chromium.ts';

/**
 * Chromium for the tests: V8 compiles WebAssembly with its baseline compiler (Liftoff) only. Every worker that
 * starts onnxruntime-web compiles its 27 MB module, and V8's background TurboFan tier-up of it then kept both
 * cores busy for ~10 s after the work was done (measured: ~25 core-seconds after the lab's run, again after a
 * fine-tune), more CPU than the tests' own work in the page. The pages run the same code either way; the
 * benchmarks launch Chromium as users have it.
 */
export const launch = (extraArgs: string[] = []): Promise<Browser> =>
  launchChromium(['--js-flags=--liftoff-only', ...extraArgs]);

type Stroke = [number, number][];

/** One DevTools session per page, for the batched moves below. */
const sessions = new WeakMap<Page, Promise<CDPSession>>();
const sessionOf = (page: Page) => {
  let session = sessions.get(page);
  if (!session) {
    session = page.context().newCDPSession(page);
    sessions.set(page, session);
  }
  return session;
};

/**
 * Draw strokes given in [0,1] pad coordinates with real mouse events: the same events `page.mouse` sends
 * (press, moves interpolated in 2 steps, release), but a stroke's moves go out together instead of one per
 * animation frame (Chromium delivers a move per frame, ~17 ms each); the pad reads every one of them through
 * getCoalescedEvents, so it draws exactly the same points.
 */
export async function drawStrokes(page: Page, strokes: Stroke[], selector = '#pad'): Promise<void> {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  const at = ([x, y]: [number, number]) => [box.x + x * box.width, box.y + y * box.height] as const;
  const session = await sessionOf(page);
  for (const stroke of strokes) {
    const [first, ...rest] = stroke;
    if (!first) continue;
    await page.mouse.move(...at(first));
    await page.mouse.down();
    // Every point as page.mouse.move(point, { steps: 2 }) would send it; the last one through page.mouse,
    // so its idea of where the mouse is (for the release and the next click) stays true.
    const points: (readonly [number, number])[] = [];
    let [fromX, fromY] = at(first);
    for (const point of rest) {
      const [x, y] = at(point);
      for (const i of [1, 2]) points.push([fromX + (x - fromX) * (i / 2), fromY + (y - fromY) * (i / 2)]);
      [fromX, fromY] = [x, y];
    }
    const last = points.pop();
    await Promise.all(
      points.map(([x, y]) =>
        session.send('Input.dispatchMouseEvent', {
          type: 'mouseMoved',
          button: 'left',
          buttons: 1,
          x,
          y,
          modifiers: 0,
          force: 0.5,
        }),
      ),
    );
    if (last) await page.mouse.move(...last);
    await page.mouse.up();
  }
}

/** Points around an ellipse, for round digits. */
export function ellipse(cx: number, cy: number, rx: number, ry: number, n = 36): Stroke {
  return Array.from({ length: n + 1 }, (_, i) => {
    const t = (2 * Math.PI * i) / n - Math.PI / 2;
    return [cx + rx * Math.cos(t), cy + ry * Math.sin(t)];
  });
}

/** Hand-drawn digits, as a person would draw them with a mouse. */
export const DIGITS: Record<number, Stroke[]> = {
  0: [ellipse(0.5, 0.5, 0.17, 0.28)],
  1: [
    [
      [0.52, 0.2],
      [0.5, 0.5],
      [0.48, 0.8],
    ],
  ],
  2: [
    [
      [0.32, 0.34],
      [0.4, 0.22],
      [0.55, 0.19],
      [0.67, 0.28],
      [0.65, 0.42],
      [0.5, 0.58],
      [0.32, 0.78],
      [0.72, 0.78],
    ],
  ],
  3: [
    [
      [0.32, 0.24],
      [0.5, 0.17],
      [0.66, 0.26],
      [0.56, 0.44],
      [0.44, 0.48],
      [0.6, 0.52],
      [0.68, 0.66],
      [0.55, 0.8],
      [0.32, 0.76],
    ],
  ],
  4: [
    [
      [0.38, 0.2],
      [0.3, 0.55],
      [0.72, 0.55],
    ],
    [
      [0.63, 0.25],
      [0.62, 0.82],
    ],
  ],
  7: [
    [
      [0.3, 0.22],
      [0.7, 0.22],
      [0.46, 0.82],
    ],
  ],
};

/** Whether the page fits its viewport's width (no sideways scrolling, as on a phone). */
export const noHorizontalOverflow = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

/**
 * The draw page at `url` (wasm, the cnn fixture) in a new 1000×1400 page, once its model is ready; `errors`
 * collects the page's uncaught errors.
 */
export async function openDrawPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/?ep=wasm&model=cnn/1`);
  await page.waitForFunction(() => (window as unknown as { demo: { ready: boolean } }).demo.ready, undefined, {
    timeout: 60_000,
  });
  return { page, errors };
}

/**
 * Wait until the draw page's reading of its pad, as it now is, has landed: the page counts settled pad changes
 * (a stroke's end, a clear) and the changes the last finished reading had seen. Live readings during a stroke
 * can land after the stroke ends, so a wait on the run count alone, plus a sleep, read stale answers under load.
 */
export async function padRead(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const d = (window as unknown as { demo: { strokesEnded: number; strokesRead: number } }).demo;
      return d.strokesRead === d.strokesEnded;
    },
    undefined,
    { timeout: 60_000 },
  );
}
