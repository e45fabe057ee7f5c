/**
 * npm run export -- --run <run dir> [--name <name>] [--version <n>] [--out models/] [--force]
 *
 * Writes <out>/<name>/<version>/model.onnx: weights as initializers, normalization and BatchNorm
 * folded in, outputs `logits` and `probabilities`, metadata — after validating it on the test set
 * against the training-side forward pass. A variant (`--precision fp16`, `--quantize int8`) goes to
 * `<model>-fp16` / `<model>-int8` unless `--name` says otherwise, so it never replaces what
 * `/predict/<model>` serves; a checkpoint already in the repository is exported again only with `--force`.
 */
import { Option } from 'commander';
import { type CliIo, lines, processIo } from '../../node/cli/io.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { exportRun } from '../export-run.ts';

const command = (io: CliIo) =>
  newProgram('export', io)
    .description('Export a training run as a deployable ONNX model into the model repository')
    .requiredOption('--run <dir>', 'run directory written by npm run train')
    .option('--name <name>', 'model name (default: the run’s model; <model>-fp16 / <model>-int8 for a variant)')
    .option('--version <n>', 'version (default: the next free integer)')
    .option('--out <dir>', 'model repository', 'models')
    .option('--force', 'overwrite an existing version, or export an already exported checkpoint again', false)
    .addOption(
      new Option('--precision <p>', 'fp16: store weights as float16 (half the size)')
        .choices(['fp32', 'fp16'])
        .default('fp32'),
    )
    .addOption(
      new Option('--quantize <q>', 'int8: per-channel int8 weights (a quarter of the size)').choices(['int8']),
    );

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const print = lines(io.out);
    const o = command(io).parse(argv, { from: 'user' }).opts<{
      run: string;
      name?: string;
      version?: string;
      out: string;
      force: boolean;
      precision: string;
      quantize?: 'int8';
    }>();
    if (o.quantize && o.precision === 'fp16') throw new Error('choose one of --precision fp16 and --quantize int8');
    const r = await exportRun({ ...o, variant: o.quantize ?? (o.precision === 'fp16' ? 'fp16' : undefined) });
    print(`wrote ${r.path} (${(r.bytes / 1024).toFixed(1)} KiB)`);
    const triton = r.tritonConfig;
    print(triton.warning ?? `${triton.action === 'written' ? 'wrote' : 'kept'} Triton's ${triton.path}`);
    if (r.alsoExportedAs) print(`note: the same checkpoint is also exported as ${r.alsoExportedAs}`);
    print(
      `validated on ${r.evaluatedImages.toLocaleString('en-US')} ${r.evaluatedOn} images: accuracy ${r.accuracy.toFixed(2)}%, max |Δlogit| vs training graph ${r.maxLogitDifference.toExponential(2)}, ${r.disagreements} different predictions`,
    );
    if (r.variant) {
      const v = r.variant;
      print(
        `${v.variant}: ${(r.bytes / 1024).toFixed(1)} KiB vs ${(v.fp32Bytes / 1024).toFixed(1)} KiB fp32; accuracy ${r.accuracy.toFixed(2)}% vs ${v.fp32Accuracy.toFixed(2)}% (${(r.accuracy - v.fp32Accuracy).toFixed(2)} pp); batch-1 latency ${v.latencyMs.toFixed(3)} ms vs ${v.fp32LatencyMs.toFixed(3)} ms`,
      );
    }
    print(
      `normalization folded into ${r.normalization === 'weights' ? 'the first layer’s weights' : 'two input nodes'}; ${r.foldedBatchNorms} BatchNorm(s) folded into convolutions`,
    );
  });
}

runIfMain(import.meta.url, main);
