/**
 * The web demo built with Vite, for tests and benchmarks that serve it to Chromium.
 *
 * `sharedWebDemo()` builds it once per content: into the OS temp dir, under a name hashed from everything
 * the build reads, so the browser test files (separate vitest workers) share one build instead of each
 * running Vite, a later run reuses it, and a changed source file can never be served from a stale build.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { build } from 'vite';

const ROOT = resolve(import.meta.dirname, '..');
/** What the build reads: the pages, the portable code they import, and the locked dependency versions. */
const INPUTS = ['web-demo', 'core', 'onnx', 'package-lock.json', 'tsconfig.json'];
const SKIPPED = new Set(['dist', 'node_modules']);
const PREFIX = 'mnist-onnx-cnn-web-';
/** A lock older than this belongs to a build that died. */
const STALE_LOCK_MS = 5 * 60_000;
/** Builds of other sources untouched this long are removed when a new one is made (each is ~30 MB). */
const OLD_BUILD_MS = 24 * 3_600_000;

export async function buildWebDemo(outDir: string): Promise<void> {
  await build({
    configFile: join(ROOT, 'web-demo/vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
}

/** The directory of a complete build of today's sources (built now if no earlier run made one). */
export async function sharedWebDemo(): Promise<string> {
  const dir = join(tmpdir(), `${PREFIX}${sourceHash()}`);
  const lock = `${dir}.lock`;
  for (;;) {
    if (existsSync(join(dir, 'index.html'))) return dir;
    if (takeLock(lock)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  try {
    if (existsSync(join(dir, 'index.html'))) return dir;
    const staging = `${dir}.tmp-${process.pid}`;
    await buildWebDemo(staging);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir); // whole or not at all: a reader never sees half a build
    removeOldBuilds(dir);
    return dir;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function removeOldBuilds(keep: string): void {
  for (const name of readdirSync(tmpdir())) {
    const path = join(tmpdir(), name);
    if (!name.startsWith(PREFIX) || path === keep || name.includes('.')) continue; // locks and stagings are not builds
    try {
      if (Date.now() - statSync(path).mtimeMs > OLD_BUILD_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // removed meanwhile by another run
    }
  }
}

/** mkdir is atomic: whoever creates the lock builds; a lock left by a dead build is taken over. */
function takeLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    try {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
    } catch {
      // gone meanwhile: the next round sees the build or takes the lock
    }
    return false;
  }
}

function sourceHash(): string {
  const hash = createHash('sha256');
  const add = (path: string) => {
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const name of readdirSync(path).sort()) if (!SKIPPED.has(name)) add(join(path, name));
    } else if (stat.isFile()) {
      hash.update(relative(ROOT, path)).update('\0').update(readFileSync(path)).update('\0');
    }
  };
  for (const input of INPUTS) add(join(ROOT, input));
  return hash.digest('hex').slice(0, 16);
}
