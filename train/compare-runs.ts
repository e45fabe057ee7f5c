/** Several runs side by side: a markdown table and accuracy/loss plots. */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../node/files.ts';
import { readRegularFile } from '../node/regular-file.ts';
import { writeChart } from './plot.ts';
import { bestEpoch, commonSet, type EpochRecord, epochRecordSchema, evaluationOf } from './run-dir.ts';

export interface RunSummary {
  label: string;
  history: EpochRecord[];
  /** A reference accuracy to show beside ours (e.g. the tutorial's printed number). */
  reference?: number;
}

const pct = (n: number) => `${n.toFixed(2)}%`;

/** Seconds under two minutes (a fast recipe's 23.8 s), minutes above. */
const duration = (seconds: number) => (seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`);

/**
 * The set the runs evaluated after each epoch ('test', or 'validation' for runs with --validation), or
 * 'held-out' when they differ (each cell then names its set).
 */
const evaluatedOn = (runs: RunSummary[]) =>
  commonSet(runs.flatMap((r) => (r.history[0] ? [evaluationOf(r.history[0]).set] : [])));

export function comparisonTable(runs: RunSummary[]): string {
  const withReference = runs.some((r) => r.reference !== undefined);
  const set = evaluatedOn(runs);
  const head = [
    'run',
    'epochs',
    `final ${set} accuracy`,
    'best (epoch)',
    ...(withReference ? ['tutorial', 'difference'] : []),
    `final ${set} loss`,
    'train img/s',
    'training time',
  ];
  const rows = runs.map(({ label, history, reference }) => {
    const last = history.at(-1);
    const best = bestEpoch(history);
    if (!last || !best) return [label, '0', ...head.slice(2).map(() => '–')];
    const final = evaluationOf(last);
    const which = set === 'held-out' ? ` (${final.set})` : '';
    const seconds = history.reduce((s, h) => s + h.seconds, 0);
    // Images over time, not the mean of per-epoch rates (which overweights fast epochs).
    const speed = history.reduce((s, h) => s + h.imagesPerSecond * h.seconds, 0) / seconds;
    return [
      label,
      String(last.epoch),
      `${pct(final.accuracy)}${which}`,
      `${pct(evaluationOf(best).accuracy)} (${best.epoch})`,
      ...(withReference
        ? [
            reference === undefined ? '–' : pct(reference),
            reference === undefined
              ? '–'
              : `${final.accuracy - reference >= 0 ? '+' : ''}${(final.accuracy - reference).toFixed(2)} pp`,
          ]
        : []),
      `${final.loss.toFixed(4)}${which}`,
      speed.toFixed(0),
      duration(seconds),
    ];
  });
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** What a comparison writes; a run writes accuracy and loss plots of the same names. */
const OUTPUTS = ['comparison.md', 'comparison.json', ...['accuracy', 'loss'].flatMap((p) => [`${p}.svg`, `${p}.png`])];
const comparisonSchema = z.array(z.object({ label: z.string(), history: z.array(epochRecordSchema) }));

/** Did we write the comparison.json in `dir`? (Read capped: it is a few KiB per run.) */
async function holdsOurComparison(dir: string): Promise<boolean> {
  try {
    const bytes = await readRegularFile(join(dir, 'comparison.json'), 64 * 1024 * 1024);
    return comparisonSchema.safeParse(JSON.parse(bytes.toString('utf8'))).success;
  } catch {
    return false;
  }
}

/**
 * `dir` may take a comparison when it holds none of its file names, or an earlier comparison of ours:
 * a run's plots or the user's own loss.png there are never overwritten.
 */
async function checkComparisonDir(dir: string): Promise<void> {
  const present: string[] = [];
  for (const file of OUTPUTS) if (await lstat(join(dir, file)).catch(() => undefined)) present.push(file);
  if (present.length > 0 && !(await holdsOurComparison(dir)))
    throw new Error(`${dir} holds ${present.join(', ')} but no earlier comparison; choose another --out`);
}

/** Write comparison.md, comparison.json, and accuracy and loss plots (SVG + PNG) into `dir`. */
export async function writeComparison(dir: string, runs: RunSummary[], title: string): Promise<string> {
  await checkComparisonDir(dir);
  const table = comparisonTable(runs);
  await writeFileAtomic(join(dir, 'comparison.md'), `# ${title}\n\n${table}\n`);
  await writeFileAtomic(join(dir, 'comparison.json'), `${JSON.stringify(runs, null, 2)}\n`);
  const set = evaluatedOn(runs);
  await writeChart(dir, 'accuracy', {
    title: `${title}: ${set} accuracy`,
    xLabel: 'Epoch',
    yLabel: 'Accuracy (%)',
    zoomY: true,
    series: runs.map((r) => ({ name: r.label, points: r.history.map((h) => [h.epoch, evaluationOf(h).accuracy]) })),
  });
  await writeChart(dir, 'loss', {
    title: `${title}: ${set} loss`,
    xLabel: 'Epoch',
    yLabel: 'Cross-entropy',
    series: runs.map((r) => ({ name: r.label, points: r.history.map((h) => [h.epoch, evaluationOf(h).loss]) })),
  });
  return table;
}
