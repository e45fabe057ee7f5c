/**
 * Every way a training process starts gives Node the training flags (node/training-flags.ts): package.json's
 * scripts, and the bench files record the flags they ran with.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeFlags } from '../bench/machine.ts';
import { TRAINING_NODE_FLAGS } from '../node/training-flags.ts';

const scripts = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).scripts as Record<
  string,
  string
>;

describe('training flags', () => {
  it('the train, reproduce and bench scripts run tsx with them', () => {
    for (const name of ['train', 'reproduce', 'bench']) {
      const words = (scripts[name] as string).split(/\s+/);
      expect(words[0], name).toBe('tsx');
      for (const flag of TRAINING_NODE_FLAGS) expect(words.slice(1, -1), name).toContain(flag);
    }
  });

  it('bench files name the flags, not the loaders or evaluated code', () => {
    const execArgv = ['--require', '/x/preflight.cjs', '--import', 'file:///x/loader.mjs', '--single-threaded-gc'];
    expect(nodeFlags(execArgv)).toEqual(['--single-threaded-gc']);
    expect(nodeFlags(['--eval', 'code', '--max-semi-space-size=32', '--import=tsx'])).toEqual([
      '--max-semi-space-size=32',
    ]);
  });
});
