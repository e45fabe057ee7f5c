/**
 * npm run reproduce [-- --models cnn,resnet --epochs 10 --threads 2 --out runs/reproduce]
 *
 * Trains the tutorial's models with its recipe (SGD lr 0.01, momentum 0.5, batch 64, 10 epochs) one
 * after another, then writes a results table beside the tutorial's printed accuracies and a
 * comparison plot. A model whose run directory already holds a finished run is not trained again.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isModelName, TUTORIAL_MODELS, ZOO, type ZooEntry } from '../../core/model/zoo/index.ts';
import { TUTORIAL_RECIPE } from '../../core/training/run-config.ts';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { positiveInt } from '../../node/cli/options.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { writeComparison } from '../compare-runs.ts';
import { trainRun } from '../loop.ts';
import { RUN_FILES, readHistory } from '../run-dir.ts';
import { threadsForThisMachine } from './threads.ts';

const command = (io: CliIo) =>
  newProgram('reproduce', io)
    .description("Train the tutorial's models with its recipe and compare with its printed results")
    .option('--models <list>', 'comma-separated models', TUTORIAL_MODELS.join(','))
    .option('--epochs <n>', 'epochs', positiveInt, TUTORIAL_RECIPE.epochs)
    .option('--threads <n>', 'ORT intra-op threads', positiveInt, 2)
    .option('--out <dir>', 'where the runs and the results go', 'runs/reproduce');

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const print = lines(io.out);
    const o = command(io)
      .parse(argv, { from: 'user' })
      .opts<{ models: string; epochs: number; threads: number; out: string }>();
    o.threads = threadsForThisMachine(o.threads, lines(io.err));
    const models = o.models.split(',').map((m) => {
      if (!isModelName(m)) throw new Error(`unknown model '${m}'`);
      return m;
    });
    for (const model of models) {
      const dir = join(o.out, model);
      const done = existsSync(join(dir, RUN_FILES.history)) && (await readHistory(dir)).length >= o.epochs;
      if (done) {
        print(`${model}: already trained in ${dir}`);
        continue;
      }
      const resume = existsSync(join(dir, RUN_FILES.config)); // a run killed before its first checkpoint resumes too
      print(`== ${model}${resume ? ' (resuming)' : ''}`);
      await trainRun({
        config: { ...TUTORIAL_RECIPE, model, epochs: o.epochs, threads: o.threads },
        dir,
        resume,
        events: { log: print },
      });
    }
    const runs = await Promise.all(
      models.map(async (model) => ({
        label: model,
        history: await readHistory(join(o.out, model)),
        reference: (ZOO[model] as ZooEntry).tutorialAccuracy,
      })),
    );
    print(await writeComparison(o.out, runs, "The tutorial's models, its recipe, 10 epochs"));
    print(`wrote ${join(o.out, 'comparison.md')} and the accuracy and loss plots (.svg, .png)`);
  });
}

runIfMain(import.meta.url, main);
