/**
 * npm run summary -- --model <name>
 *
 * Prints a zoo model's layers with output shapes, parameter counts and multiply-accumulates per image.
 */
import { MODEL_NAMES, zooEntry } from '../../core/model/zoo/index.ts';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { summarize } from '../summary-table.ts';

const command = (io: CliIo) =>
  newProgram('summary', io)
    .description('Show a model-zoo network layer by layer: output shape, parameters, MACs per image')
    .requiredOption('-m, --model <name>', `one of: ${MODEL_NAMES.join(', ')}`);

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, () => {
    const { model } = command(io).parse(argv, { from: 'user' }).opts<{ model: string }>();
    const print = lines(io.out);
    const entry = zooEntry(model);
    print(`${entry.title} (tutorial §${entry.section})`);
    print(summarize(model, entry.build()).text);
  });
}

runIfMain(import.meta.url, main);
