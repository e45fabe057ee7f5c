/** Several runs side by side: a markdown table and accuracy/loss plots. */
import { join } from 'node:path';
import { writeFileAtomic } from '../export/files.ts';
import { writeChart } from './plot.ts';
import type { EpochRecord } from './run-dir.ts';

export interface RunSummary {
  label: string;
  history: EpochRecord[];
  /** A reference accuracy to show beside ours (e.g. the tutorial's printed number). */
  reference?: number;
}

const pct = (n: number) => `${n.toFixed(2)}%`;

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
    'minutes',
  ];
  const rows = runs.map(({ label, history, reference }) => {
    const last = history.at(-1);
    if (!last) return [label, '0', ...head.slice(2).map(() => '–')];
    const best = history.reduce((b, h) => (h.testAccuracy > b.testAccuracy ? h : b));
    const minutes = history.reduce((s, h) => s + h.seconds, 0) / 60;
    const speed = history.reduce((s, h) => s + h.imagesPerSecond, 0) / history.length;
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
      minutes.toFixed(1),
    ];
  });
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Write comparison.md, comparison.json, and accuracy and loss plots (SVG + PNG) into `dir`. */
export async function writeComparison(dir: string, runs: RunSummary[], title: string): Promise<string> {
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
