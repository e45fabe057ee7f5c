/**
 * npm run export -- --run <run dir> [--name <name>] [--version <n>] [--out models/] [--force]
 *
 * Writes <out>/<name>/<version>/model.onnx: weights as initializers, normalization and BatchNorm
 * folded in, outputs `logits` and `probabilities`, metadata — after validating it on the test set
 * against the training-side forward pass.
 */
import { Command } from 'commander';
import { runCli } from '../../export/cli/run-cli.ts';
import { exportRun } from '../export-run.ts';

const program = new Command('export')
  .description('Export a training run as a deployable ONNX model into the model repository')
  .requiredOption('--run <dir>', 'run directory written by npm run train')
  .option('--name <name>', 'model name (default: the run’s model)')
  .option('--version <n>', 'version (default: the next free integer)')
  .option('--out <dir>', 'model repository', 'models')
  .option('--force', 'overwrite an existing version', false)
  .parse();

await runCli(async () => {
  const o = program.opts<{ run: string; name?: string; version?: string; out: string; force: boolean }>();
  const r = await exportRun(o);
  console.log(`wrote ${r.path} (${(r.bytes / 1024).toFixed(1)} KiB)`);
  console.log(
    `validated on 10,000 test images: accuracy ${r.accuracy.toFixed(2)}%, max |Δlogit| vs training graph ${r.maxLogitDifference.toExponential(2)}, ${r.disagreements} different predictions`,
  );
  console.log(
    `normalization folded into ${r.normalization === 'weights' ? 'the first layer’s weights' : 'two input nodes'}; ${r.foldedBatchNorms} BatchNorm(s) folded into convolutions`,
  );
});
