/**
 * `npm run bench -- --what train` (or `--what epoch`) for a machine without Node tooling (pack.sh bundles this
 * file, run.sh runs it pinned to two of the machine's CPUs, like a 2-vCPU VM): ours as `train` runs it (worker
 * threads, the native kernels where the kit's build runs on this CPU, autotuned), PyTorch beside it in
 * alternating rounds (`$MNIST_ONNX_CNN_PYTHON`: the machine's own torch), the same table and machine section.
 * Prints markdown.
 *
 *   node --single-threaded-gc --initial-old-space-size=64 cpu-bench.mjs --models cnn,cnn3,resnet,inception,mlp --threads 1,2 --rounds 2 --seconds 2
 *   node --single-threaded-gc --initial-old-space-size=64 cpu-bench.mjs --what epoch --models cnn,resnet --threads 2 --rounds 2
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_NAMES, type ModelName } from '../../core/model/zoo/index.ts';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { positiveInt, positiveNumber } from '../../node/cli/options.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { benchEpoch, inProcessEpochs } from '../epoch-bench.ts';
import { describeMachine } from '../machine.ts';
import { measuredOn } from '../machine-report.ts';
import { blasLabel, torchInfo } from '../torch.ts';
import { benchTrain } from '../train-bench.ts';

const command = (io: CliIo) =>
  newProgram('cpu-bench', io)
    .option('--what <kind>', "'train' (steps on a fixed batch) or 'epoch' (one epoch of MNIST)", 'train')
    .option('--models <list>', 'zoo models', 'cnn,cnn3,resnet,inception,mlp')
    .option('--threads <list>', 'thread counts', '1,2')
    .option('--rounds <n>', 'alternating rounds (medians are kept)', '2')
    .option('--seconds <n>', 'seconds per measurement', '2');

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const o = command(io).parse(argv, { from: 'user' }).opts<Record<string, string>>();
    const print = lines(io.out);
    const models = (o.models as string).split(',') as ModelName[];
    const bad = models.find((m) => !MODEL_NAMES.includes(m));
    if (bad) throw new Error(`'${bad}' is not one of ${MODEL_NAMES.join(', ')}`);
    const threads = (o.threads as string).split(',').map((t) => positiveInt(t));
    if (o.what !== 'train' && o.what !== 'epoch') throw new Error(`--what is 'train' or 'epoch', not '${o.what}'`);
    const torch = torchInfo();
    print(torch ? `PyTorch ${torch.version}, BLAS: ${blasLabel(torch)}` : 'PyTorch not found: ours only');
    // The autotuner's choices are made and cached here, in a folder of this run's own.
    const cacheDir = mkdtempSync(join(tmpdir(), 'cpu-bench-autotune-'));
    try {
      const rounds = positiveInt(o.rounds as string);
      const autotune = { cacheDir };
      const seconds = positiveNumber(o.seconds as string);
      const report = await measuredOn(
        describeMachine(),
        () =>
          o.what === 'epoch'
            ? benchEpoch({ models, threads, rounds, torch, autotune, runEpoch: inProcessEpochs() })
            : benchTrain({ models, threads, batch: 64, rounds, seconds, torch, autotune }),
        torch,
      );
      print(report.markdown);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
}

runIfMain(import.meta.url, main);
