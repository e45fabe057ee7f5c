/**
 * npm run compare -- <run dir>... [--out <dir>]
 *
 * Puts several runs side by side: one table (printed, and comparison.md) and accuracy/loss plots.
 */
import { basename, join } from 'node:path';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { writeComparison } from '../compare-runs.ts';
import { readConfig, readHistory } from '../run-dir.ts';

const command = (io: CliIo) =>
  newProgram('compare', io)
    .description('Compare training runs: a table and accuracy/loss plots')
    .argument('<runs...>', 'run directories')
    .option('--out <dir>', 'where to write comparison.md, comparison.json and the plots', 'runs/compare');

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const program = command(io).parse(argv, { from: 'user' });
    const print = lines(io.out);
    const dirs = program.args;
    const runs = await Promise.all(
      dirs.map(async (dir) => {
        const config = await readConfig(dir);
        const name = basename(dir);
        return { label: name === config.model ? name : `${config.model} (${name})`, history: await readHistory(dir) };
      }),
    );
    const { out } = program.opts<{ out: string }>();
    print(await writeComparison(out, runs, `${runs.length} runs`));
    print(`wrote ${join(out, 'comparison.md')} and the accuracy and loss plots (.svg, .png)`);
  });
}

runIfMain(import.meta.url, main);
