/**
 * Each CLI run as a script (node + tsx, as `npm run …` starts it) prints and exits exactly as its exported `main`
 * does when called in this process, where the other tests call it: the entry wiring (runIfMain, the exit code,
 * the streams) stays tested. serve, sweep and start have process tests of their own (signals, kills, `npm start`).
 */
import { describe, expect, it } from 'vitest';
import type { CliMain } from '../node/cli/run-cli.ts';
import { runCli, runScript } from './helpers/cli.ts';

/** Script, how to load its main, and cheap arguments: errors from commander and from the work, and output. */
const CASES: [string, () => Promise<{ main: CliMain }>, string[]][] = [
  ['train/cli/train.ts', () => import('../train/cli/train.ts'), ['--lr', '-0.1']],
  ['train/cli/compare.ts', () => import('../train/cli/compare.ts'), ['/nonexistent']],
  ['train/cli/reproduce.ts', () => import('../train/cli/reproduce.ts'), ['--models', 'lenet']],
  ['train/cli/summary.ts', () => import('../train/cli/summary.ts'), ['--model', 'cnn']],
  ['export/cli/export.ts', () => import('../export/cli/export.ts'), ['--run', '/nonexistent']],
  ['export/cli/inspect.ts', () => import('../export/cli/inspect.ts'), ['test/fixtures/models/cnn/1/model.onnx']],
  ['bench/cli.ts', () => import('../bench/cli.ts'), ['--what', 'nope']],
  ['bench/device/gpu-bench.ts', () => import('../bench/device/gpu-bench.ts'), ['--models', 'vgg']],
];

describe('CLI entry points', () => {
  it.concurrent.each(CASES)(
    '%s as a script: the same output and exit code as its main',
    async (script, load, args) => {
      const [{ main }, asScript] = await Promise.all([load(), runScript(script, ...args)]);
      const inProcess = await runCli(main, ...args);
      expect(asScript).toEqual(inProcess);
      expect(inProcess.stdout + inProcess.stderr).not.toBe(''); // it said something
    },
    90_000,
  );
});
