/**
 * What a run's config may hold, checked wherever one comes in: flags, a hand-edited config.json on
 * resume, the library API. The bounds keep a typo from starting hundreds of workers or asking for
 * gigabytes of batch buffers; a bad field fails in one line that names it.
 */
import { z } from 'zod';
import { dropoutRefusal, MODEL_NAMES } from '../model/zoo/index.ts';
import { NODE_DEVICES as DEVICES } from '../ort-runtime.ts';
import { issuesInOneLine } from '../zod-issues.ts';
import { augmentOptions } from './augment.ts';
import { OPTIMIZERS, type TrainConfig } from './run-config.ts';
import { SCHEDULES } from './schedule.ts';

export const LIMITS = {
  epochs: 10_000,
  /** Beyond this a step's activations take gigabytes (cnn7); MNIST's whole training set is 60,000. */
  batchSize: 4096,
  /** Each thread can be a worker with its own ORT session (tens of MB): a bound on memory, not speed. */
  threads: 64,
  /** The RNG's state is one uint32: larger seeds would alias smaller ones. */
  seed: 0xffff_ffff,
  /** Elastic distortion's α in pixels: past ~100 a 28×28 digit is noise (the paper's is 34). */
  elastic: 100,
} as const;

export const trainConfigSchema = z.object({
  model: z.enum(MODEL_NAMES),
  epochs: z.number().int().min(1).max(LIMITS.epochs),
  batchSize: z.number().int().min(1).max(LIMITS.batchSize),
  lr: z.number().positive(),
  momentum: z.number().min(0).lt(1),
  optimizer: z.enum(OPTIMIZERS),
  weightDecay: z.number().min(0),
  schedule: z.enum(SCHEDULES),
  augment: z.boolean(),
  elastic: z.number().min(0).max(LIMITS.elastic).optional(),
  erase: z.number().min(0).max(1).optional(),
  dropout: z.number().min(0).lt(1).optional(),
  plainEpochs: z.number().int().min(0).max(LIMITS.epochs).optional(),
  labelSmoothing: z.number().min(0).lt(1),
  seed: z.number().int().min(0).max(LIMITS.seed),
  threads: z.number().int().min(1).max(LIMITS.threads),
  device: z.enum(DEVICES),
  limit: z.number().int().positive().optional(),
  validation: z.number().int().positive().optional(),
  ema: z.number().gt(0).lt(1).optional(),
  parallelism: z.enum(['workers', 'session']).optional(),
  autotune: z.boolean().optional(),
}) satisfies z.ZodType<TrainConfig>;

/** `value` as a TrainConfig (unknown fields dropped), or one line naming `where` and each bad field. */
export function parseTrainConfig(value: unknown, where: string): TrainConfig {
  const result = trainConfigSchema.safeParse(value);
  if (!result.success)
    throw new Error(`${where} is not a valid run config: ${issuesInOneLine(result.error, 'config')}`);
  const refusal = result.data.dropout === undefined ? undefined : dropoutRefusal([result.data.model]);
  if (refusal) throw new Error(`${where} is not a valid run config: dropout: ${refusal}`);
  const plain = plainEpochsRefusal(result.data);
  if (plain) throw new Error(`${where} is not a valid run config: plainEpochs: ${plain}`);
  return result.data;
}

/** Why `plainEpochs` cannot apply to `config` (no augmentation to leave out, or more than the run's epochs). */
export function plainEpochsRefusal(config: TrainConfig): string | undefined {
  const plain = config.plainEpochs ?? 0;
  if (plain === 0) return undefined;
  if (!augmentOptions(config)) return 'the run has no augmentation (--augment, --elastic or --erase) to leave out';
  if (plain > config.epochs) return `${plain} plain epochs are more than the run's ${config.epochs}`;
  return undefined;
}
