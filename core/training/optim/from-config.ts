import type { TrainConfig } from '../run-config.ts';
import { adam, adamw } from './adam.ts';
import type { Optimizer } from './optimizer.ts';
import { sgd } from './sgd.ts';

/** The optimizer a run's config names. */
export function optimizerFor(config: Pick<TrainConfig, 'optimizer' | 'momentum' | 'weightDecay'>): Optimizer {
  switch (config.optimizer) {
    case 'sgd':
      return sgd({ momentum: config.momentum, weightDecay: config.weightDecay });
    case 'adam':
      return adam({ weightDecay: config.weightDecay });
    case 'adamw':
      return adamw({ weightDecay: config.weightDecay });
  }
}
