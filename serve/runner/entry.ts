/**
 * Where a runner process starts from: the bundled `model-runner.mjs` beside the server bundle (the
 * container image, deploy/bundle-server.mjs); in a checkout, process.ts bundled once per server by
 * esbuild into a temporary folder (plain node starts it ~40% faster than tsx would), or through tsx
 * when esbuild is missing.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface RunnerEntry {
  path: string;
  execArgv: string[];
}

/** A devDependency, absent from the container (which has the bundled runner): named, not imported statically. */
const DEV_BUNDLER = 'esbuild';

let entry: Promise<RunnerEntry> | undefined;

export function runnerEntry(): Promise<RunnerEntry> {
  entry ??= findEntry();
  return entry;
}

async function findEntry(): Promise<RunnerEntry> {
  const bundled = fileURLToPath(new URL('./model-runner.mjs', import.meta.url));
  if (existsSync(bundled)) return { path: bundled, execArgv: [] };
  const source = fileURLToPath(new URL('./process.ts', import.meta.url));
  const require = createRequire(import.meta.url);
  try {
    const esbuild: typeof import('esbuild') = await import(DEV_BUNDLER);
    const dir = mkdtempSync(join(tmpdir(), 'model-runner-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const outfile = join(dir, 'model-runner.mjs');
    await esbuild.build({
      entryPoints: [source],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
      // Packages stay where they are installed: imported by absolute path from the temporary folder.
      plugins: [
        {
          name: 'installed-packages',
          setup(build) {
            build.onResolve({ filter: /^[^./]/ }, (args) =>
              args.path.startsWith('node:')
                ? { path: args.path, external: true }
                : { path: pathToFileURL(require.resolve(args.path)).href, external: true },
            );
          },
        },
      ],
    });
    return { path: outfile, execArgv: [] };
  } catch {
    return { path: source, execArgv: [`--import=${pathToFileURL(require.resolve('tsx')).href}`] };
  }
}
