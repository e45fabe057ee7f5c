/**
 * The folders' arrows point one way (docs/development.md): each folder may import only the folders
 * listed for it. Read from the import statements themselves, so a new file cannot slip an arrow back up.
 * (Which APIs core/ and the pages may use is the compiler's job: core/tsconfig.json, web-demo/tsconfig.json.)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Folder → the folders its files may import (besides their own). */
const ALLOWED: Record<string, string[]> = {
  onnx: [],
  native: [], // the C++ kernels' addon (built at install)
  core: ['onnx'],
  node: ['native', 'core', 'onnx'],
  train: ['node', 'core', 'onnx'],
  export: ['train', 'node', 'core', 'onnx'],
  serve: ['node', 'core', 'onnx'],
  start: ['serve', 'export', 'train', 'node', 'core', 'onnx'],
  'web-demo/src': ['core', 'onnx'],
  sweep: ['train', 'node', 'core', 'onnx'],
  testkit: ['serve', 'export', 'train', 'node', 'core', 'onnx', 'web-demo'],
  bench: ['testkit', 'sweep', 'start', 'serve', 'export', 'train', 'node', 'core', 'onnx', 'web-demo'],
};

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(path).isDirectory()) yield* sources(path);
    else if (/\.(ts|mts)$/.test(name)) yield path;
  }
}

const folderOf = (file: string) => {
  const rel = relative(ROOT, file);
  return Object.keys(ALLOWED)
    .filter((folder) => rel === folder || rel.startsWith(`${folder}/`))
    .sort((a, b) => b.length - a.length)[0];
};

/** Relative import specifiers of a file (static, dynamic and worker URLs). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(
    /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]|new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]/g,
  ))
    found.push((m[1] ?? m[2]) as string);
  return found;
}

describe('layering', () => {
  it('every import stays inside its folder or goes to a folder below it', () => {
    const violations: string[] = [];
    let checked = 0;
    for (const folder of Object.keys(ALLOWED)) {
      for (const file of sources(join(ROOT, folder))) {
        if (folderOf(file) !== folder) continue; // a sub-folder with rules of its own
        for (const spec of importsOf(file)) {
          checked++;
          const target = folderOf(resolve(dirname(file), spec)) ?? relative(ROOT, resolve(dirname(file), spec));
          const targetTop = target.startsWith('web-demo') && folder !== 'web-demo/src' ? 'web-demo' : target;
          if (target === folder || ALLOWED[folder]?.includes(targetTop) || ALLOWED[folder]?.includes(target)) continue;
          violations.push(`${relative(ROOT, file)} imports ${spec} (${target})`);
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(violations).toEqual([]);
  });

  it('nothing outside test/ imports test/', () => {
    const offenders: string[] = [];
    for (const folder of Object.keys(ALLOWED))
      for (const file of sources(join(ROOT, folder)))
        for (const spec of importsOf(file))
          if (relative(ROOT, resolve(dirname(file), spec)).startsWith('test/'))
            offenders.push(`${relative(ROOT, file)} imports ${spec}`);
    expect(offenders).toEqual([]);
  });
});
