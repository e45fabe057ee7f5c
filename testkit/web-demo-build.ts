/** The web demo built into `outDir` (Vite), for tests and benchmarks that serve it to Chromium. */
import { build } from 'vite';

export async function buildWebDemo(outDir: string): Promise<void> {
  await build({ configFile: 'web-demo/vite.config.ts', logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}
