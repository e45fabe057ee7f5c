/** `--threads N` means N workers where that was measured faster and changes nothing but speed. */
import { expect, it } from 'vitest';
import { ZOO } from '../core/model/zoo/index.ts';
import { defaultParallelism } from '../train/parallel/create-trainer.ts';

it('uses workers for BatchNorm-free models, one session for BatchNorm ones', () => {
  const chosen = Object.fromEntries(
    (['mlp', 'cnn', 'cnn3', 'resnet', 'inception', 'fast-cnn', 'densenet', 'cnn7'] as const).map((m) => [
      m,
      defaultParallelism(ZOO[m].build()),
    ]),
  );
  expect(chosen).toEqual({
    mlp: 'workers', // 1 MAC per parameter, and still faster as workers in every run since 2026-12-05's e
    cnn: 'workers',
    cnn3: 'workers',
    resnet: 'workers',
    inception: 'workers',
    'fast-cnn': 'session', // BatchNorm: per-slice statistics would change the recipe's results
    densenet: 'session',
    cnn7: 'session',
  });
});
