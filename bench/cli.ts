/**
 * npm run bench -- [--what train|serve|preprocess|all] [--models cnn,resnet] [--threads 1,2] [--rounds 3] [--seconds 2]
 *
 * Training throughput at batch 64 for each model and thread count; with Debian's PyTorch installed,
 * PyTorch's step runs in alternation with ours (same machine, same moment) and the table shows the
 * ratio ours / PyTorch of the medians. Writes bench/results-train.json and bench/results-train.md.
 */
import { Command } from 'commander';
import { writeFileAtomic } from '../export/files.ts';
import { runCli } from '../runtime/cli/run-cli.ts';
import { isModelName, MODEL_NAMES } from '../train/zoo/index.ts';
import { benchPreprocessReport } from './preprocess.ts';
import { serveLoad } from './serve-load.ts';
import { torchTrainingThroughput, torchVersion } from './torch.ts';
import { ourTrainingThroughput } from './train-throughput.ts';

const program = new Command('bench')
  .description('Benchmarks, as ratios against PyTorch run side by side')
  .option('--what <what>', 'which benchmark: train, serve, preprocess or all', 'all')
  .option('--models <list>', 'comma-separated model names', MODEL_NAMES.join(','))
  .option('--threads <list>', 'comma-separated intra-op thread counts', '1,2')
  .option('--batch <n>', 'batch size', '64')
  .option('--rounds <n>', 'alternating rounds per configuration', '3')
  .option('--seconds <s>', 'seconds per measurement', '2')
  .parse();

/** Loopback HTTP load on /predict, with and without dynamic batching; writes bench/results-serve.{md,json}. */
async function benchServe(seconds: number): Promise<void> {
  const { rows, inProcessMs } = await serveLoad([1, 16, 64], Math.max(seconds, 3));
  const md = [
    '# Inference server: POST /predict (JSON pixels), simple CNN, loopback',
    '',
    `autocannon, ${Math.max(seconds, 3)} s per row; server in its own process, 1 ORT thread. In-process ORT batch-1 latency: ${inProcessMs.toFixed(3)} ms.`,
    '',
    '| batching | body | images/request | connections | requests/s | predictions/s | p50 ms | p99 ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.batching ? 'on (≤64, 1 ms)' : 'off'} | ${r.binary ? 'float32' : 'JSON'} | ${r.imagesPerRequest} | ${r.connections} | ${r.requestsPerSecond.toFixed(0)} | ${(r.requestsPerSecond * r.imagesPerRequest).toFixed(0)} | ${r.p50} | ${r.p99} |`,
    ),
    '',
  ].join('\n');
  console.log(md);
  await writeFileAtomic(new URL('./results-serve.md', import.meta.url).pathname, md);
  await writeFileAtomic(
    new URL('./results-serve.json', import.meta.url).pathname,
    `${JSON.stringify({ inProcessMs, rows }, null, 2)}\n`,
  );
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

await runCli(async () => {
  const o = program.opts<{
    what: string;
    models: string;
    threads: string;
    batch: string;
    rounds: string;
    seconds: string;
  }>();
  if (!['train', 'serve', 'preprocess', 'all'].includes(o.what))
    throw new Error(`unknown benchmark '${o.what}'; available: train, serve, preprocess, all`);
  if (o.what === 'preprocess' || o.what === 'all') await benchPreprocessReport();
  if (o.what === 'serve' || o.what === 'all') await benchServe(Number(o.seconds));
  if (o.what === 'train' || o.what === 'all') await benchTrain(o);
  await writeSummary();
});

/** bench/results.md and results.json: every benchmark's latest results in one place. */
async function writeSummary(): Promise<void> {
  const { existsSync, readFileSync } = await import('node:fs');
  const path = (kind: string, ext: string) => new URL(`./results-${kind}.${ext}`, import.meta.url).pathname;
  const kinds = ['train', 'serve', 'preprocess'].filter(
    (k) => existsSync(path(k, 'md')) && existsSync(path(k, 'json')),
  );
  const md = kinds.map((k) => readFileSync(path(k, 'md'), 'utf8'));
  const json = Object.fromEntries(kinds.map((k) => [k, JSON.parse(readFileSync(path(k, 'json'), 'utf8'))]));
  await writeFileAtomic(new URL('./results.md', import.meta.url).pathname, `${md.join('\n')}`);
  await writeFileAtomic(new URL('./results.json', import.meta.url).pathname, `${JSON.stringify(json, null, 2)}\n`);
  console.log('wrote bench/results.md and bench/results.json');
}

async function benchTrain(o: {
  models: string;
  threads: string;
  batch: string;
  rounds: string;
  seconds: string;
}): Promise<void> {
  const models = o.models.split(',').map((m) => {
    if (!isModelName(m)) throw new Error(`unknown model '${m}'`);
    return m;
  });
  const threads = o.threads.split(',').map(Number);
  const [batch, rounds, seconds] = [Number(o.batch), Number(o.rounds), Number(o.seconds)];
  const torch = torchVersion();
  console.log(
    torch
      ? `PyTorch ${torch} found: running it side by side`
      : 'PyTorch not found (apt-get install python3-torch): ours only',
  );

  interface Row {
    model: string;
    threads: number;
    ours: number;
    torch?: number;
    ratio?: number;
  }
  const rows: Row[] = [];
  for (const model of models) {
    for (const t of threads) {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(await ourTrainingThroughput({ model, threads: t, batch, seconds }));
        if (torch) theirs.push(torchTrainingThroughput(model, t, batch, seconds));
      }
      const row: Row = { model, threads: t, ours: median(ours) };
      if (torch) {
        row.torch = median(theirs);
        row.ratio = row.ours / row.torch;
      }
      rows.push(row);
      console.log(
        `${model.padEnd(20)} ${t} thread(s): ours ${row.ours.toFixed(0).padStart(6)} img/s` +
          (row.torch && row.ratio
            ? `   PyTorch ${row.torch.toFixed(0).padStart(6)} img/s   ratio ${row.ratio.toFixed(2)}×`
            : ''),
      );
    }
  }
  const header = `Training throughput, batch ${batch}, images/s (median of ${rounds} alternating rounds of ${seconds} s)`;
  const md = [
    `# ${header}`,
    '',
    `Machine: ${(await import('node:os')).cpus().length} cores. PyTorch: ${torch ?? 'not installed'}. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| model | threads | ours | PyTorch | ours / PyTorch |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.threads} | ${r.ours.toFixed(0)} | ${r.torch?.toFixed(0) ?? '–'} | ${r.ratio ? `${r.ratio.toFixed(2)}×` : '–'} |`,
    ),
    '',
  ].join('\n');
  await writeFileAtomic(new URL('./results-train.md', import.meta.url).pathname, md);
  await writeFileAtomic(
    new URL('./results-train.json', import.meta.url).pathname,
    `${JSON.stringify({ batch, rounds, seconds, torch, rows }, null, 2)}\n`,
  );
  console.log('wrote bench/results-train.md and bench/results-train.json');
}
