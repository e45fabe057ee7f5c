/**
 * npm run bench -- [--what train|infer|serve|browser|preprocess|epoch|attack|train-page|all] [--models cnn,resnet] [--threads 1,2] [--rounds 3]
 *                  [--seconds 2] [--out <dir>] [--no-autotune]
 *
 * Benchmarks as ratios against Debian's PyTorch run side by side (when installed). Each benchmark writes
 * results-<kind>.md/.json, and results.md/.json gathers them, in --out (default runs/bench/<time>/, so
 * the committed bench/results* change only when asked: --out bench). Every file ends with the machine it
 * ran on and the load average around it (machine.ts, machine-report.ts).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { isModelName, MODEL_NAMES, type ModelName } from '../core/model/zoo/index.ts';
import { type CliIo, lines, processIo } from '../node/cli/io.ts';
import { positiveInt, positiveNumber } from '../node/cli/options.ts';
import { newProgram } from '../node/cli/program.ts';
import { runCommand } from '../node/cli/run-cli.ts';
import { runIfMain } from '../node/cli/run-if-main.ts';
import { writeFileAtomic } from '../node/files.ts';
import { defaultCacheDir } from '../train/autotune/cache.ts';
import { describeMachine } from './machine.ts';
import { measuredOn } from './machine-report.ts';
import type { BenchReport } from './report.ts';
import { blasLabel, type TorchInfo, torchInfo } from './torch.ts';

/**
 * `all` runs these; `epoch` (one epoch of real MNIST per model and thread count), `attack` (the server's
 * health under hostile clients and models) and `train-page` (/train's defaults reach 97%) only when asked.
 */
const KINDS = ['train', 'infer', 'serve', 'browser', 'preprocess'] as const;
const ALL_KINDS = [...KINDS, 'epoch', 'attack', 'train-page'] as const;
/** The benchmarks that run PyTorch beside us. */
const TORCH_KINDS: readonly string[] = ['train', 'epoch', 'infer'];

const command = (io: CliIo) =>
  newProgram('bench', io)
    .description('Benchmarks, as ratios against PyTorch run side by side')
    .option('--what <what>', `which benchmark: ${ALL_KINDS.join(', ')} or all (${KINDS.join(', ')})`, 'all')
    .option('--models <list>', 'comma-separated model names', MODEL_NAMES.join(','))
    .option('--threads <list>', 'comma-separated thread counts', '1,2')
    .option('--batch <n>', 'batch size (training, and inference throughput)', '64')
    .option('--rounds <n>', 'alternating rounds per configuration', '3')
    .option('--seconds <s>', 'seconds per measurement', '2')
    .option('--out <dir>', 'where results go (default runs/bench/<time>/; --out bench updates the committed ones)')
    .option(
      '--no-autotune',
      'worker steps with the usual gradient formulations and equal slices (train --no-autotune), not autotuned and balanced as train builds them by default',
    )
    .option(
      '--allow-reference-blas',
      "compare against PyTorch even when it runs on the reference BLAS (numbers won't be fair)",
    );

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const print = lines(io.out);
    const o = command(io).parse(argv, { from: 'user' }).opts<{
      what: string;
      models: string;
      threads: string;
      batch: string;
      rounds: string;
      seconds: string;
      out?: string;
      allowReferenceBlas?: boolean;
      autotune: boolean;
    }>();
    const what = o.what === 'all' ? [...KINDS] : [o.what];
    for (const kind of what)
      if (!(ALL_KINDS as readonly string[]).includes(kind))
        throw new Error(`unknown benchmark '${kind}'; available: ${ALL_KINDS.join(', ')}, all`);
    const models = o.models.split(',').map((m): ModelName => {
      if (!isModelName(m)) throw new Error(`unknown model '${m}'`);
      return m;
    });
    const threads = o.threads.split(',').map((t) => positiveInt(t));
    const [batch, rounds, seconds] = [positiveInt(o.batch), positiveInt(o.rounds), positiveNumber(o.seconds)];
    const out = resolve(o.out ?? join('runs', 'bench', new Date().toISOString().replace(/[:.]/g, '-')));
    mkdirSync(out, { recursive: true });

    const torch = what.some((k) => TORCH_KINDS.includes(k))
      ? await pytorchBeside(Boolean(o.allowReferenceBlas), print)
      : undefined;
    const autotune = o.autotune ? { cacheDir: defaultCacheDir() } : false;
    const machine = describeMachine();
    const reports: BenchReport[] = [];
    /** Runs one benchmark and records the machine, the load around it and the PyTorch it used (if any). */
    const run = async (bench: () => Promise<BenchReport>, torchUsed?: TorchInfo) => {
      reports.push(await measuredOn(machine, bench, torchUsed));
    };
    // Each benchmark's modules load only when it runs: the training steps measured in this process would
    // otherwise share a heap holding the server, Playwright and the rest, and V8 collects it more often.
    if (what.includes('serve')) await run(async () => (await import('./serve-bench.ts')).benchServe(seconds));
    if (what.includes('attack')) await run(async () => (await import('./attack-bench.ts')).benchAttack());
    if (what.includes('train')) {
      const { benchTrain } = await import('./train-bench.ts');
      await run(() => benchTrain({ models, threads, batch, rounds, seconds, torch, autotune }), torch);
    }
    if (what.includes('epoch')) {
      const { benchEpoch } = await import('./epoch-bench.ts');
      await run(() => benchEpoch({ models, threads, rounds, torch, autotune }), torch);
    }
    if (what.includes('infer')) {
      const { benchInfer } = await import('./infer-bench.ts');
      await run(() => benchInfer({ models, threads, batch, rounds, seconds, torch }), torch);
    }
    if (what.includes('preprocess')) await run(async () => (await import('./preprocess.ts')).benchPreprocessReport());
    if (what.includes('browser')) {
      const { benchBrowser } = await import('./browser-train.ts');
      await run(() => benchBrowser({ models: ['cnn', 'fast-cnn'], images: 1920, batch }));
    }
    if (what.includes('train-page')) await run(async () => (await import('./train-page-defaults.ts')).benchTrainPage());
    for (const r of reports) {
      print(r.markdown);
      await writeFileAtomic(join(out, `results-${r.kind}.md`), r.markdown);
      await writeFileAtomic(join(out, `results-${r.kind}.json`), `${JSON.stringify(r.json, null, 2)}\n`);
    }
    await writeSummary(out);
    print(`wrote ${out}/results*.md and .json`);
  });
}

runIfMain(import.meta.url, main);

/** PyTorch to compare against, or undefined (with the reason printed). */
async function pytorchBeside(allowReferenceBlas: boolean, print: (line: string) => void) {
  const info = torchInfo();
  if (!info) {
    print('PyTorch not found (apt-get install python3-torch libopenblas0-pthread): ours only');
    return undefined;
  }
  print(`PyTorch ${info.version} found, BLAS: ${blasLabel(info)}`);
  if (info.referenceBlas && !allowReferenceBlas) {
    print(
      'PyTorch is using the reference BLAS, which makes its Linear layers crawl and any ratio meaningless: ' +
        'install an optimized one (apt-get install libopenblas0-pthread) or pass --allow-reference-blas. Ours only.',
    );
    return undefined;
  }
  return info;
}

/** results.md and results.json in `out`: every benchmark's results there, in one place. */
async function writeSummary(out: string): Promise<void> {
  const { existsSync, readFileSync } = await import('node:fs');
  const path = (kind: string, ext: string) => join(out, `results-${kind}.${ext}`);
  const kinds = ALL_KINDS.filter((k) => existsSync(path(k, 'md')) && existsSync(path(k, 'json')));
  const md = kinds.map((k) => readFileSync(path(k, 'md'), 'utf8'));
  const json = Object.fromEntries(kinds.map((k) => [k, JSON.parse(readFileSync(path(k, 'json'), 'utf8'))]));
  await writeFileAtomic(join(out, 'results.md'), md.join('\n'));
  await writeFileAtomic(join(out, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
}
