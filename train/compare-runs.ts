/** Several runs side by side: a markdown table and accuracy/loss plots. */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../node/files.ts';
import { readRegularFile } from '../node/regular-file.ts';
import { writeChart } from './plot.ts';
import { type EpochRecord, epochRecordSchema } from './run-dir.ts';

export interface RunSummary {
  label: string;
  history: EpochRecord[];
  /** A reference accuracy to show beside ours (e.g. the tutorial's printed number). */
  reference?: number;
}

const pct = (n: number) => `${n.toFixed(2)}%`;

/** Seconds under two minutes (a fast recipe's 23.8 s), minutes above. */
const duration = (seconds: number) => (seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`);

export function comparisonTable(runs: RunSummary[]): string {
  const withReference = runs.some((r) => r.reference !== undefined);
  const head = [
    'run',
    'epochs',
    'final test accuracy',
    'best (epoch)',
    ...(withReference ? ['tutorial', 'difference'] : []),
    'final test loss',
    'train img/s',
    'training time',
  ];
  const rows = runs.map(({ label, history, reference }) => {
    const last = history.at(-1);
    if (!last) return [label, '0', ...head.slice(2).map(() => '–')];
    const best = history.reduce((b, h) => (h.testAccuracy > b.testAccuracy ? h : b));
    const seconds = history.reduce((s, h) => s + h.seconds, 0);
    // Images over time, not the mean of per-epoch rates (which overweights fast epochs).
    const speed = history.reduce((s, h) => s + h.imagesPerSecond * h.seconds, 0) / seconds;
    return [
      label,
      String(last.epoch),
      pct(last.testAccuracy),
      `${pct(best.testAccuracy)} (${best.epoch})`,
      ...(withReference
        ? [
            reference === undefined ? '–' : pct(reference),
            reference === undefined
              ? '–'
              : `${last.testAccuracy - reference >= 0 ? '+' : ''}${(last.testAccuracy - reference).toFixed(2)} pp`,
          ]
        : []),
      last.testLoss.toFixed(4),
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
  await writeChart(dir, 'accuracy', {
    title: `${title}: test accuracy`,
    xLabel: 'Epoch',
    yLabel: 'Accuracy (%)',
    zoomY: true,
    series: runs.map((r) => ({ name: r.label, points: r.history.map((h) => [h.epoch, h.testAccuracy]) })),
  });
  await writeChart(dir, 'loss', {
    title: `${title}: test loss`,
    xLabel: 'Epoch',
    yLabel: 'Cross-entropy',
    series: runs.map((r) => ({ name: r.label, points: r.history.map((h) => [h.epoch, h.testLoss]) })),
  });
  return table;
}
