/** README: "Every command takes `--help`" — each npm script's CLI, asked for help, prints its usage and exits 0. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import type { CliMain } from '../node/cli/run-cli.ts';
import { runCli } from './helpers/cli.ts';

/** package.json's scripts that start one of our CLIs, and the module each runs. */
const COMMANDS: Record<string, string> = {
  start: '../start/start.ts',
  train: '../train/cli/train.ts',
  export: '../export/cli/export.ts',
  serve: '../serve/cli.ts',
  dev: '../web-demo/dev.ts',
  compare: '../train/cli/compare.ts',
  sweep: '../sweep/cli.ts',
  reproduce: '../train/cli/reproduce.ts',
  inspect: '../export/cli/inspect.ts',
  summary: '../train/cli/summary.ts',
  bench: '../bench/cli.ts',
};

it('every command in package.json that starts a CLI of ours is in this list', () => {
  const scripts: Record<string, string> = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
  ).scripts;
  const ours = Object.entries(scripts)
    .filter(([, command]) => /^tsx\b/.test(command))
    .map(([name]) => name)
    .sort();
  expect(ours).toEqual(Object.keys(COMMANDS).sort());
});

it.each(Object.entries(COMMANDS))('npm run %s -- --help prints its usage and options, and exits 0', async (_, path) => {
  const { main } = (await import(path)) as { main: CliMain };
  const { code, stdout } = await runCli(main, '--help');
  expect(code).toBe(0);
  expect(stdout).toMatch(/^Usage: /m);
  expect(stdout).toMatch(/^ {2}-h, --help +display help for command$/m);
});
