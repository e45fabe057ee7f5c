/** The README's commands exist (no drift between the docs and package.json). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync('README.md', 'utf8');
const scripts = Object.keys(
  (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts,
);

describe('README', () => {
  it('quick start is exactly two commands: one runs the pipeline, one runs the tests', () => {
    const quick = /## Quick start\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1]?.trim().split('\n') ?? [];
    expect(quick).toHaveLength(2);
    expect(quick[0]).toMatch(/^npm install && npm start\b/);
    expect(quick[1]).toMatch(/^npm test\b/);
  });

  it('names only npm scripts that package.json defines', () => {
    const named = new Set<string>();
    for (const m of readme.matchAll(/npm run ([a-z][a-z0-9:-]*)/g)) named.add(m[1] as string);
    for (const m of readme.matchAll(/\bnpm (start|test)\b/g)) named.add(m[1] as string);
    expect(named.size).toBeGreaterThan(10);
    for (const script of named) expect(scripts, `npm run ${script}`).toContain(script);
  });
});
