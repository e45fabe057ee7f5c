/**
 * npm start [-- --all] [--port 8080] [--host 127.0.0.1] [--runs runs/start] [--device cpu]
 *
 * The whole pipeline on a fresh clone: when the model repository has no model, train the default
 * (the simple CNN, 2 epochs — about a minute on 2 cores) and export it; build the web demo if it isn't
 * built; then serve the API and the demo. A second start reuses both and is up in seconds.
 * `--all` first trains and exports every tutorial model (10 epochs each, the tutorial's recipe) that
 * the repository lacks. Each training goes into a new run directory `<runs>/<model>/<timestamp>`; an
 * existing run is never reused or overwritten.
 */
import { join, resolve } from 'node:path';

import { type ModelName, TUTORIAL_MODELS } from '../core/model/zoo/index.ts';
import {
  NODE_DEVICES as DEVICES,
  type NodeDevice as Device,
  type NodeProvider as Provider,
} from '../core/ort-runtime.ts';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { exportRun } from '../export/export-run.ts';
import { type CliIo, lines, processIo } from '../node/cli/io.ts';
import { oneOf, port, positiveInt } from '../node/cli/options.ts';
import { newProgram } from '../node/cli/program.ts';
import { runCommand } from '../node/cli/run-cli.ts';
import { runIfMain } from '../node/cli/run-if-main.ts';
import { probeDevice } from '../node/device-probe.ts';
import { listModelFiles } from '../node/repository.ts';
import { assertPortFree, startServer, stopSignal } from '../serve/server.ts';
import { ensureWebDemo, WEB_ROOT } from '../serve/web-build.ts';
import { terminalEvents } from '../train/cli/progress.ts';
import { trainRun } from '../train/loop.ts';
import { newRunDir } from '../train/run-dir.ts';

const ROOT = resolve(import.meta.dirname, '..');

const command = (io: CliIo) =>
  newProgram('start', io)
    .description('Train and export a model if there is none, then serve the API and the web demo')
    .option('--all', 'train and export every tutorial model the repository lacks (10 epochs each)', false)
    .option('--models <dir>', 'model repository', join(ROOT, 'models'))
    .option(
      '--runs <dir>',
      'where training runs go (each in a new <model>/<timestamp> directory)',
      join(ROOT, 'runs', 'start'),
    )
    .option(
      '--device <name>',
      `execution provider for training and serving: ${DEVICES.join(', ')}`,
      oneOf(DEVICES),
      'cpu',
    )
    .option('--port <n>', 'port (0: any free port)', port, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--epochs <n>', 'epochs for the default model (2; --all uses the tutorial’s 10)', positiveInt)
    .option('--limit <n>', 'train on the first n images only (a quick look)', positiveInt)
    .option('--web <dir>', 'serve the web demo from this build (default: web-demo/dist, built on the first start)');

interface TrainingPlan {
  epochs: number;
  models: string;
  runs: string;
  device: Device;
  /** What `device` resolved to (`auto`'s pick): the step is built for it. */
  provider: Provider;
  limit?: number;
}

async function trainAndExport(model: ModelName, plan: TrainingPlan, io: CliIo): Promise<void> {
  const print = lines(io.out);
  const { epochs, limit, device, provider } = plan;
  const dir = await newRunDir(join(plan.runs, model));
  print(`== training ${model} (${epochs} epoch${epochs > 1 ? 's' : ''}, the tutorial's recipe) into ${dir}`);
  await trainRun({
    config: { ...TUTORIAL_RECIPE, model, epochs, threads: 2, limit, device },
    dir,
    events: terminalEvents(epochs, io),
    device: provider,
  });
  const report = await exportRun({ run: dir, out: plan.models, name: model });
  print(`exported ${report.path}: test accuracy ${report.accuracy.toFixed(2)}%`);
}

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const print = lines(io.out);
    const o = command(io).parse(argv, { from: 'user' }).opts<{
      all: boolean;
      models: string;
      runs: string;
      device: Device;
      port: number;
      host: string;
      epochs?: number;
      limit?: number;
      web?: string;
    }>();
    // An unavailable device or a busy port fails here, before minutes of training.
    const provider = await probeDevice(o.device);
    await assertPortFree(o.host, o.port);
    const served = [...new Set(listModelFiles(o.models).map((file) => file.name))];
    const toTrain = o.all
      ? TUTORIAL_MODELS.filter((m) => !served.includes(m))
      : served.length === 0
        ? (['cnn'] as ModelName[])
        : [];
    const plan = {
      epochs: o.epochs ?? (o.all ? 10 : 2),
      models: o.models,
      runs: o.runs,
      device: o.device,
      provider,
      limit: o.limit,
    };
    for (const model of toTrain) await trainAndExport(model, plan, io);
    if (toTrain.length === 0) print(`using the models in ${o.models}: ${served.join(', ')}`);
    if (!o.web) await ensureWebDemo(WEB_ROOT, print); // a build given with --web is served as it is
    const server = await startServer({
      models: o.models,
      port: o.port,
      host: o.host,
      webRoot: o.web ?? WEB_ROOT,
      device: o.device,
      log: print,
    });
    // Listening starts before "Ready" is printed: whoever reads it may signal at once.
    const stop = stopSignal();
    try {
      print(
        `\nReady:\n  draw a digit      ${server.url}/\n  API docs          ${server.url}/docs\n  predict (POST)    ${server.url}/predict\n  metrics           ${server.url}/metrics\nCtrl-C stops.`,
      );
      print(`\n${await stop.received}: stopping…`);
    } finally {
      await server.close();
      stop.dispose();
    }
  });
}

runIfMain(import.meta.url, main);
