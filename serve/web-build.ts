/** Build the web demo with Vite when it is missing, so `npm run serve` on a fresh clone serves it. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const WEB_ROOT = resolve(import.meta.dirname, '../web-demo/dist');
const CONFIG = resolve(import.meta.dirname, '../web-demo/vite.config.ts');

/** The pages a complete build has (a build from an older checkout may lack the newer ones). */
const PAGES = ['index.html', join('train', 'index.html')];

/** Build into `outDir` unless it already holds a complete build; says so in one line. */
export async function ensureWebDemo(outDir = WEB_ROOT, log: (line: string) => void = console.log): Promise<void> {
  if (PAGES.every((page) => existsSync(join(outDir, page)))) return;
  // Vite is a dev dependency: a production install (the container image) has the demo prebuilt instead.
  const vite = 'vite';
  let build: typeof import('vite').build;
  try {
    ({ build } = (await import(vite)) as typeof import('vite'));
  } catch {
    log('the web demo is not built and vite is not installed here: run `npm run build:web` where it is');
    return;
  }
  log('the web demo is not built yet: building it (vite, ~20 s; `npm run build:web` rebuilds it any time)');
  await build({ configFile: CONFIG, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}
