/**
 * npm run compare -- <run dir>... [--out <dir>]
 *
 * Puts several runs side by side: one table (printed, and comparison.md) and accuracy/loss plots.
 */
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { runCli } from '../../node/cli/run-cli.ts';
import { writeComparison } from '../compare-runs.ts';
import { readConfig, readHistory } from '../run-dir.ts';

const program = new Command('compare')
  .description('Compare training runs: a table and accuracy/loss plots')
  .argument('<runs...>', 'run directories')
  .option('--out <dir>', 'where to write comparison.md, comparison.json and the plots', 'runs/compare')
  .parse();

await runCli(async () => {
  const dirs = program.args;
  const runs = await Promise.all(
    dirs.map(async (dir) => {
      const config = await readConfig(dir);
      const name = basename(dir);
      return { label: name === config.model ? name : `${config.model} (${name})`, history: await readHistory(dir) };
    }),
  );
  const { out } = program.opts<{ out: string }>();
  console.log(await writeComparison(out, runs, `${runs.length} runs`));
  console.log(`wrote ${join(out, 'comparison.md')} and the accuracy and loss plots (.svg, .png)`);
});
