/**
 * npm run summary -- --model <name>
 *
 * Prints a zoo model's layers with output shapes, parameter counts and multiply-accumulates per image.
 */
import { Command } from 'commander';
import { MODEL_NAMES, zooEntry } from '../../core/model/zoo/index.ts';
import { runCli } from '../../node/cli/run-cli.ts';
import { summarize } from '../summary-table.ts';

const program = new Command('summary')
  .description('Show a model-zoo network layer by layer: output shape, parameters, MACs per image')
  .requiredOption('-m, --model <name>', `one of: ${MODEL_NAMES.join(', ')}`)
  .parse();

await runCli(() => {
  const { model } = program.opts<{ model: string }>();
  const entry = zooEntry(model);
  console.log(`${entry.title} (tutorial §${entry.section})`);
  console.log(summarize(model, entry.build()).text);
});
