/**
 * README: "`npm install` downloads nothing beyond npm packages" — because npm 11 runs a dependency's install
 * script only when `package.json`'s `allowScripts` allows it. The lockfile (written by npm, not by us) marks
 * every package that has one: each must be listed, and denied, so a new dependency with a script (one that
 * might download a binary) fails here instead of running at a user's install.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (file: string) => JSON.parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));

describe('dependency install scripts', () => {
  it('every package the lockfile says has one is denied by allowScripts', () => {
    const lock = read('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
    const allow = (read('package.json') as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    const withScripts = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0); // onnxruntime-node's CUDA download, at least
    for (const name of new Set(withScripts)) expect(allow[name], name).toBe(false);
  });
});
