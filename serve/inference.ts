/** /predict's convenience around a served model: the normalization it needs, batching, softmax. */
import { IMAGE_PIXELS, normalizePixels } from '../core/contract.ts';
import { softmax } from '../core/softmax.ts';
import { concatRows } from './batcher.ts';
import { sumTimings } from './inference-stats.ts';
import type { ServedVersion } from './served-version.ts';

export interface Prediction {
  prediction: number;
  probabilities: number[];
  logits: number[];
}

/** The model answered with NaN or ±Infinity: nothing a client could use (JSON would show it as null). */
export class NonFiniteOutputError extends Error {
  override name = 'NonFiniteOutputError';
}

/** Throws NonFiniteOutputError unless every value of every output is finite. */
export function assertFiniteOutputs(model: ServedVersion, outputs: Record<string, Float32Array>): void {
  for (const [name, values] of Object.entries(outputs))
    for (const v of values)
      if (!Number.isFinite(v))
        throw new NonFiniteOutputError(
          `model '${model.name}' version ${model.version} answered ${v} in output ${name} for this input`,
        );
}

/**
 * `images`: count × 784 raw intensities in [0, 1]. More images than one run takes (the model's
 * max_batch_size) go as several requests to the batcher: /predict is ours, so it splits rather than refuses.
 */
export function predict(
  model: ServedVersion,
  images: Float32Array,
  count: number,
  /** Aborts when the client goes away: the chunks still waiting leave the queue unrun. */
  clientGone?: AbortSignal,
  /** Whose request it is: the queue's room and turns are shared by client (queue-shares.ts). */
  client?: string,
): Promise<Prediction[]> {
  // Counted in the version's statistics like a v2 request (one request, however many chunks).
  return model.stats.request(async () => {
    const input = model.normalizesInput ? normalizePixels(images) : images;
    // All of the request's chunks go in, or none (no half-run request whose answer nobody gets).
    const chunks: { images: Float32Array; count: number }[] = [];
    for (let first = 0; first < count; first += model.maxBatch) {
      const n = Math.min(model.maxBatch, count - first);
      chunks.push({ images: input.subarray(first * IMAGE_PIXELS, (first + n) * IMAGE_PIXELS), count: n });
    }
    const answers = await model.batcher.inferAll(chunks, clientGone, client);
    const parts = answers.map((a) => a.outputs[model.signature.logits] as Float32Array);
    const logits = parts.length === 1 ? (parts[0] as Float32Array) : concatRows(parts);
    assertFiniteOutputs(model, { [model.signature.logits]: logits });
    const classes = logits.length / count;
    const value = Array.from({ length: count }, (_, i) => {
      const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
      const probabilities = softmax(row);
      return { prediction: probabilities.indexOf(Math.max(...probabilities)), probabilities, logits: row };
    });
    return { value, count, timings: sumTimings(answers.map((a) => a.timings)) };
  });
}
