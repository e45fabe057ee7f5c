/**
 * Training throughput on a GPU machine that has no Node tooling (pack.sh bundles this file, run.sh runs it):
 * steady-state images/s per device, model and batch size, then one epoch of the simple CNN with the tutorial's
 * recipe and its test accuracy. Prints markdown.
 *
 *   node gpu-bench.mjs --devices webgpu,cpu --models cnn,resnet --batches 64,512 --threads 16 --seconds 5 --epoch webgpu
 */
import { InvalidArgumentError } from 'commander';
import { IMAGE_PIXELS, NUM_CLASSES } from '../../core/contract.ts';
import { MODEL_NAMES, type ModelName, ZOO } from '../../core/model/zoo/index.ts';
import type { NodeProvider as Provider } from '../../core/ort-runtime.ts';
import { Rng } from '../../core/random.ts';
import { sgd } from '../../core/training/optim/index.ts';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { positiveInt } from '../../node/cli/options.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { loadMnist, normalize, take } from '../../node/mnist.ts';
import { createNodeTrainer, type Trainer } from '../../train/trainer.ts';

const list =
  <T extends string>(allowed: readonly T[]) =>
  (value: string): T[] => {
    const items = value.split(',') as T[];
    const bad = items.find((item) => !allowed.includes(item));
    if (bad) throw new InvalidArgumentError(`'${bad}' is not one of ${allowed.join(', ')}.`);
    return items;
  };
const PROVIDERS: readonly Provider[] = ['cpu', 'webgpu', 'cuda'];

const command = (io: CliIo) =>
  newProgram('gpu-bench', io)
    .option('--devices <list>', 'ORT execution providers to measure', list(PROVIDERS), ['webgpu', 'cpu'] as Provider[])
    .option('--models <list>', 'zoo models', list(MODEL_NAMES), ['cnn', 'resnet'] as ModelName[])
    .option('--batches <list>', 'batch sizes', (v) => v.split(',').map((b) => positiveInt(b)), [64, 512])
    .option('--threads <n>', 'intra-op threads for the CPU provider', positiveInt, 1)
    .option('--seconds <n>', 'measured seconds per row (after 3 warm-up steps)', positiveInt, 5)
    .option('--no-rows', 'skip the throughput table (only the epoch)')
    .option('--epoch <device>', 'then train one epoch of cnn on this provider and test it')
    .option('--limit <n>', 'the epoch on the first n training images only (a quick check)', positiveInt);

interface Flags {
  devices: Provider[];
  models: ModelName[];
  batches: number[];
  threads: number;
  seconds: number;
  rows: boolean;
  epoch?: Provider;
  limit?: number;
}

const recipe = () => ({ optimizer: sgd({ momentum: 0.5 }), seed: 0 });
const firstLine = (error: unknown) =>
  String((error as Error).message ?? error)
    .split('\n')[0]
    ?.slice(0, 160);

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const o = command(io).parse(argv, { from: 'user' }).opts<Flags>();
    const print = lines(io.out);
    const threadsFor = (device: Provider) => (device === 'cpu' ? o.threads : 1);
    if (o.rows) print('| engine | device | model | batch | train images/s |\n|---|---|---|---:|---:|');
    for (const device of o.rows ? o.devices : [])
      for (const model of o.models)
        for (const batch of o.batches) {
          const rng = new Rng(0);
          const images = Float32Array.from({ length: batch * IMAGE_PIXELS }, () => rng.uniform(-0.5, 2.5));
          const labels = Array.from({ length: batch }, () => rng.int(NUM_CLASSES));
          let trainer: Trainer | undefined;
          try {
            trainer = await createNodeTrainer(ZOO[model].build(), { ...recipe(), device, threads: threadsFor(device) });
            for (let i = 0; i < 3; i++) await trainer.step(images, labels, 0.01);
            let steps = 0;
            const start = performance.now();
            while (performance.now() - start < o.seconds * 1000) {
              await trainer.step(images, labels, 0.01);
              steps++;
            }
            const rate = (steps * batch) / ((performance.now() - start) / 1000);
            // The kit runs one plain ORT session (no worker threads or native kernels: it is a single bundled file).
            const where =
              device === 'cpu' ? `cpu, ORT graph, ${o.threads} thread${o.threads > 1 ? 's' : ''}` : trainer.provider;
            print(`| ORT (ours) | ${where} | ${model} | ${batch} | ${rate.toFixed(0)} |`);
          } catch (error) {
            print(`| ORT (ours) | ${device} | ${model} | ${batch} | failed: ${firstLine(error)} |`);
          } finally {
            await trainer?.release();
          }
        }

    if (o.epoch) {
      const device = o.epoch;
      try {
        const [train, test] = [take(await loadMnist('train'), o.limit), await loadMnist('test')];
        const x = normalize(train.images);
        const trainer = await createNodeTrainer(ZOO.cnn.build(), { ...recipe(), device, threads: threadsFor(device) });
        const start = performance.now();
        for (let i = 0; i < train.count; i += 64) {
          const n = Math.min(64, train.count - i);
          await trainer.step(
            x.subarray(i * IMAGE_PIXELS, (i + n) * IMAGE_PIXELS),
            train.labels.subarray(i, i + n),
            0.01,
          );
        }
        const seconds = (performance.now() - start) / 1000;
        const { accuracy } = await trainer.evaluate(normalize(test.images), test.labels);
        print(
          `\nOne epoch${o.limit ? ` (first ${train.count} images)` : ''} of cnn on ${trainer.provider} (SGD lr 0.01 momentum 0.5, batch 64, MNIST order, seed 0): ${seconds.toFixed(1)} s (${(train.count / seconds).toFixed(0)} images/s), test accuracy ${accuracy.toFixed(2)}%`,
        );
        await trainer.release();
      } catch (error) {
        print(`\nOne epoch of cnn on ${device}: failed: ${firstLine(error)}`);
      }
    }
  });
}

runIfMain(import.meta.url, main);
