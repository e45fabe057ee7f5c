/**
 * The end of a run as `name=value` lines on stdout: the format Katib's StdOut metrics collector reads
 * (and `npm run sweep` parses), after a human line with the training time, which was only in history.json.
 */
import { bestEpoch, type EpochRecord, evaluationOf } from './run-dir.ts';

/**
 * A run's summary metrics: accuracies as fractions (Katib objectives are plain numbers), time in seconds.
 * Named after the set evaluated: `test_accuracy`, or `validation_accuracy` for a run with --validation.
 */
export function runMetrics(history: EpochRecord[]): Record<string, number> {
  const last = history.at(-1);
  const best = bestEpoch(history);
  if (!last || !best) return {};
  const { set, accuracy, loss } = evaluationOf(last);
  return {
    [`${set}_accuracy`]: accuracy / 100,
    [`best_${set}_accuracy`]: evaluationOf(best).accuracy / 100,
    [`${set}_loss`]: loss,
    // Training time only: the test evaluation after each epoch is not counted (as in every table of the README).
    train_seconds: history.reduce((sum, h) => sum + h.seconds, 0),
  };
}

/** Four digits for every accuracy and loss; one for seconds. */
const DIGITS: Record<string, number> = { train_seconds: 1 };

export function metricLines(metrics: Record<string, number>): string[] {
  return Object.entries(metrics).map(([name, value]) => `${name}=${value.toFixed(DIGITS[name] ?? 4)}`);
}

export function printRunMetrics(history: EpochRecord[], print: (line: string) => void = console.log): void {
  const metrics = runMetrics(history);
  if (metrics.train_seconds === undefined) return;
  print(
    `training time: ${metrics.train_seconds.toFixed(1)} s (${history.length} epoch${history.length === 1 ? '' : 's'})`,
  );
  for (const line of metricLines(metrics)) print(line);
}
