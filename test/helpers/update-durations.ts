/** Rewrites test/durations.json from a vitest JSON report (`.ci/run` leaves one: .vitest-report.json). */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { DURATIONS_FILE } from './sequencer.ts';

interface Report {
  testResults: { name: string; startTime: number; endTime: number }[];
}

const reportPath = process.argv[2];
if (!reportPath) throw new Error('usage: npx tsx test/helpers/update-durations.ts <vitest json report>');
const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
const root = resolve(import.meta.dirname, '..', '..');
const durations = Object.fromEntries(
  report.testResults
    .map((r) => [relative(root, r.name), Math.round((r.endTime - r.startTime) / 100) / 10] as const)
    .sort(([a], [b]) => a.localeCompare(b)),
);
writeFileSync(DURATIONS_FILE, `${JSON.stringify(durations, null, 2)}\n`);
console.log(`${Object.keys(durations).length} files → ${DURATIONS_FILE}`);
