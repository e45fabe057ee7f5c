/**
 * npm run train -- --model <name> [options]
 *
 * Trains a zoo model on MNIST with the tutorial's recipe unless told otherwise (`--recipe fast|best`
 * picks one of ours; flags given override the recipe's values), printing the
 * tutorial's log lines (and a live progress bar on a terminal), and writes a run directory:
 * config.json, history.json, checkpoint.bin, accuracy.svg/.png, loss.svg/.png. `--resume <dir>` continues a run
 * (only `--epochs` may change then); `--out` into a directory that holds files needs `--force`.
 */
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { DROPOUT_MODELS, MODEL_NAMES } from '../../core/model/zoo/index.ts';
import { NODE_DEVICES as DEVICES } from '../../core/ort-runtime.ts';
import { RECIPE_NAMES, RECIPES, type RecipeName } from '../../core/training/recipes.ts';
import { OPTIMIZERS, type TrainConfig, TUTORIAL_RECIPE } from '../../core/training/run-config.ts';
import { LIMITS } from '../../core/training/run-config-schema.ts';
import { SCHEDULES } from '../../core/training/schedule.ts';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import {
  fraction,
  nonNegativeInt,
  nonNegativeNumber,
  oneOf,
  openFraction,
  positiveInt,
  positiveNumber,
  upTo,
} from '../../node/cli/options.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { probeDevice } from '../../node/device-probe.ts';
import { defaultCacheDir } from '../autotune/cache.ts';
import { trainRun } from '../loop.ts';
import { bestEpoch, evaluationOf, newRunDir, readConfig } from '../run-dir.ts';
import { printRunMetrics } from '../run-metrics.ts';
import { terminalEvents } from './progress.ts';
import { threadsForThisMachine } from './threads.ts';

const r = TUTORIAL_RECIPE;

const command = (io: CliIo) =>
  newProgram('train', io)
    .description('Train a model-zoo network on MNIST (defaults: the tutorial recipe)')
    .addOption(
      new Option('--recipe <name>', 'named settings (listed below); flags given override them')
        .choices(RECIPE_NAMES)
        .default('tutorial'),
    )
    .addOption(new Option('-m, --model <name>', 'model to train').choices(MODEL_NAMES).default('cnn'))
    .option('--epochs <n>', `epochs (at most ${LIMITS.epochs})`, upTo(LIMITS.epochs, positiveInt), r.epochs)
    .option(
      '--batch-size <n>',
      `batch size (at most ${LIMITS.batchSize})`,
      upTo(LIMITS.batchSize, positiveInt),
      r.batchSize,
    )
    .option('--lr <rate>', 'learning rate (peak rate for onecycle)', positiveNumber, r.lr)
    .option('--momentum <m>', 'SGD momentum', fraction, r.momentum)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS).default(r.optimizer))
    .option('--weight-decay <λ>', 'weight decay (decoupled for adamw)', nonNegativeNumber, r.weightDecay)
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(SCHEDULES).default(r.schedule))
    .option('--augment', 'random shifts, rotations and scaling of the training images', r.augment)
    .option(
      '--elastic <α>',
      `elastic distortion of the training images, α pixels (Simard et al.: 34, σ 4; at most ${LIMITS.elastic})`,
      upTo(LIMITS.elastic, nonNegativeNumber),
    )
    .option(
      '--erase <p>',
      'random erasing (Zhong et al. 2017): with probability p (0 to 1), a rectangle of 2–40% of a training image filled with random pixels',
      upTo(1, nonNegativeNumber),
    )
    .option(
      '--plain-epochs <n>',
      'the last n epochs train on the images as they are, augmentation off (default 0)',
      upTo(LIMITS.epochs, nonNegativeInt),
    )
    .option(
      '--dropout <p>',
      `every dropout layer's probability, in [0, 1) (${DROPOUT_MODELS.join(', ')}: 0.4; other models have none)`,
      fraction,
    )
    .option('--label-smoothing <ε>', 'label smoothing', fraction, r.labelSmoothing)
    .option(
      '--seed <n>',
      'seed for initialization, shuffling, augmentation and dropout (a uint32)',
      upTo(LIMITS.seed, nonNegativeInt),
      r.seed,
    )
    .option(
      '--threads <n>',
      "ORT intra-op threads (with --workers: data-parallel worker threads); at most the machine's cores",
      positiveInt,
      r.threads,
    )
    .option('--device <name>', `execution provider: ${DEVICES.join(', ')}`, oneOf(DEVICES), r.device)
    .option('--limit <n>', 'train on the first n training images only', positiveInt)
    .option(
      '--validation <n>',
      'hold out the last n training images and evaluate on them after each epoch; the test set is then never read',
      positiveInt,
    )
    .option(
      '--ema <decay>',
      'evaluate, checkpoint and export an exponential moving average of the weights with this decay (e.g. 0.999)',
      openFraction,
    )
    .option('--no-ema', "no weight average, where the recipe has one (--recipe best's 0.999)")
    .option('--out <dir>', 'run directory, new or empty (default: a new runs/<model>/<timestamp>)')
    .option('--force', 'let --out replace the run in a directory that holds one', false)
    .option('--resume <dir>', 'continue the run in <dir> from its last checkpoint (only --epochs may change)')
    .option(
      '--workers',
      'split each batch over --threads threads, 1 ORT session each (BatchNorm statistics per slice); default for BatchNorm-free models',
    )
    .option('--no-workers', 'one ORT session with --threads intra-op threads')
    .option(
      '--no-autotune',
      `build the usual gradient formulations and split batches evenly (reproducible sums), not the fastest formulations measured per shape (cached in ${defaultCacheDir()}) and speed-balanced slices`,
    )
    .addHelpText(
      'after',
      `\nRecipes:\n${RECIPE_NAMES.map((n) => `  ${n.padEnd(9)} ${RECIPES[n].description}`).join('\n')}`,
    );

type Flags = TrainConfig & {
  recipe: RecipeName;
  out?: string;
  resume?: string;
  force: boolean;
  autotune: boolean;
  workers?: boolean;
};

/** The recipe's config, with every flag given on the command line taking precedence. */
function configFrom(program: Command, flags: Flags): TrainConfig {
  const config: TrainConfig = { ...RECIPES[flags.recipe].config };
  const keys = [
    ...Object.keys(TUTORIAL_RECIPE),
    'model',
    'limit',
    'validation',
    'ema',
    'elastic',
    'erase',
    'dropout',
    'plainEpochs',
  ] as (keyof TrainConfig)[];
  for (const key of keys) {
    if (program.getOptionValueSource(key) === 'cli') Object.assign(config, { [key]: flags[key] });
  }
  // --no-ema sets the flag to false: the config then has no average at all.
  if ((config.ema as number | boolean | undefined) === false) delete config.ema;
  return config;
}

/** --workers/--no-workers, else the recipe's choice (undefined: the model's default). */
function parallelismFrom(flags: Flags): 'workers' | 'session' | undefined {
  if (flags.workers !== undefined) return flags.workers ? 'workers' : 'session';
  return RECIPES[flags.recipe].parallelism;
}

/** Flags given on the command line that a resumed run cannot honour: its config is its identity. */
function conflictsWithResume(program: Command): string[] {
  const given = program.options.filter((option) => {
    const key = option.attributeName();
    if (['resume', 'epochs'].includes(key) || program.getOptionValueSource(key) !== 'cli') return false;
    // --ema and --no-ema share one key: the one given is the one whose sense matches the value.
    const pair = program.options.filter((other) => other.attributeName() === key);
    return pair.length === 1 || option.negate === (program.getOptionValue(key) === false);
  });
  return given.map((option) => option.long ?? option.flags);
}

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const program = command(io).parse(argv, { from: 'user' });
    const flags = program.opts<Flags>();
    const print = lines(io.out);
    let config: TrainConfig;
    let dir: string;
    if (flags.resume) {
      const conflicts = conflictsWithResume(program);
      if (conflicts.length > 0)
        throw new Error(
          `--resume continues a run with its own settings; only --epochs may change (drop ${conflicts.join(', ')})`,
        );
      dir = flags.resume;
      config = await readConfig(dir, { strict: true });
      if (program.getOptionValueSource('epochs') === 'cli') config.epochs = flags.epochs;
    } else {
      config = configFrom(program, flags);
      config.threads = threadsForThisMachine(config.threads, lines(io.err)); // a resumed run keeps its recorded count
      // Recorded in config.json, so a resume splits and tunes its steps as the run did.
      const parallelism = parallelismFrom(flags);
      if (parallelism) config.parallelism = parallelism;
      config.autotune = flags.autotune;
    }
    // An unavailable device fails here, before any data is loaded; `auto` becomes what it found (config.json keeps `auto`).
    const device = await probeDevice(config.device);
    dir ??= flags.out ?? (await newRunDir(join('runs', config.model)));

    const history = await trainRun({
      config,
      dir,
      resume: Boolean(flags.resume),
      overwrite: flags.force,
      events: terminalEvents(config.epochs, io),
      autotune: config.autotune !== false && { cacheDir: defaultCacheDir() },
      device,
    });
    const last = history.at(-1);
    const best = bestEpoch(history);
    if (last && best) {
      const { set, accuracy } = evaluationOf(last);
      const bestAccuracy = evaluationOf(best).accuracy;
      print(`done: ${set} accuracy ${accuracy.toFixed(2)}% (best ${bestAccuracy.toFixed(2)}%), run directory ${dir}`);
      printRunMetrics(history, print);
    }
  });
}

runIfMain(import.meta.url, main);
