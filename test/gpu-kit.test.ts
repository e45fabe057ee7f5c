/**
 * The GPU kit's bench entry (bench/device/gpu-bench.ts, which pack.sh bundles) on the CPU provider: it still
 * builds against the trainer and prints a well-formed table row and the epoch line. pack.sh + run.sh
 * themselves take minutes (xz of node), so they are checked by hand; see bench/device/README.md.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../bench/device/gpu-bench.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

describe('GPU kit bench entry', () => {
  it('prints a markdown row per device/model/batch and one epoch with its test accuracy', async () => {
    const { stdout } = await passingCli(
      main,
      ...[
        '--devices',
        'cpu',
        '--models',
        'cnn',
        '--batches',
        '8',
        '--seconds',
        '1',
        '--epoch',
        'cpu',
        '--limit',
        '640',
      ],
    );
    const lines = stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual([
      '| engine | device | model | batch | train images/s |',
      '|---|---|---|---:|---:|',
    ]);
    expect(lines[2]).toMatch(/^\| ORT \(ours\) \| cpu, ORT graph, 1 thread \| cnn \| 8 \| [1-9]\d* \|$/);
    const accuracy = Number(/test accuracy (\d+\.\d\d)%$/.exec(stdout.trim())?.[1]);
    // Ten SGD steps from the tutorial's init: better than chance (10%), far from trained.
    expect(accuracy).toBeGreaterThan(12);
    expect(stdout).toMatch(/One epoch \(first 640 images\) of cnn on cpu/);
  }, 120_000);

  it('refuses an unknown model or device in its own words', async () => {
    expect(await failingCli(main, '--models', 'vgg')).toMatch(
      /^error: option '--models <list>' argument 'vgg' is invalid\. 'vgg' is not one of mlp, cnn/,
    );
  });
});
