/**
 * Where a runner process starts from: the bundled `model-runner.mjs` beside the server bundle (the
 * container image, deploy/bundle-server.mjs); in a checkout, process.ts bundled by esbuild (plain node
 * starts it ~40% faster than tsx would) into node_modules/.cache, named by its contents' hash, so every
 * server of one checkout shares one file and a killed server leaves nothing behind (a temporary folder per
 * server, removed on 'exit', was left by every SIGKILL); through tsx when esbuild is missing or the cache
 * cannot be written.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface RunnerEntry {
  path: string;
  execArgv: string[];
}

/** A devDependency, absent from the container (which has the bundled runner): named, not imported statically. */
const DEV_BUNDLER = 'esbuild';
const PREFIX = 'model-runner-';
/** Bundles of older sources, untouched this long, are removed when a server starts. */
const STALE_MS = 30 * 24 * 3600 * 1000;

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
    const result = await esbuild.build({
      entryPoints: [source],
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
      // Packages stay where they are installed: imported by absolute path from the cache folder.
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
    const code = (result.outputFiles[0] as { contents: Uint8Array }).contents;
    const cache = join(dirname(dirname(require.resolve(`${DEV_BUNDLER}/package.json`))), '.cache', 'mnist-onnx-cnn');
    return { path: cached(cache, code), execArgv: [] };
  } catch {
    return { path: source, execArgv: [`--import=${pathToFileURL(require.resolve('tsx')).href}`] };
  }
}

/** `code`'s file in `folder`, written whole (a temporary name, then renamed) unless it is there already. */
function cached(folder: string, code: Uint8Array): string {
  const name = `${PREFIX}${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
  const path = join(folder, name);
  mkdirSync(folder, { recursive: true });
  if (!existsSync(path)) {
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, code);
    renameSync(partial, path);
  } else {
    // Marks it in use, so a server of other sources never takes it for stale.
    utimesSync(path, new Date(), new Date());
  }
  removeStale(folder, name);
  return path;
}

function removeStale(folder: string, keep: string): void {
  const now = Date.now();
  for (const name of readdirSync(folder)) {
    if (!name.startsWith(PREFIX) || name === keep) continue;
    try {
      if (now - statSync(join(folder, name)).mtimeMs > STALE_MS) rmSync(join(folder, name), { force: true });
    } catch {
      // Removed by another server starting at the same moment.
    }
  }
}
