/** The training loop and the train command: determinism, exact resume, crash-safe checkpoints, flags. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { probeDevice } from '../node/device-probe.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { decodeCheckpoint, loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { main } from '../train/cli/train.ts';
import { trainRun } from '../train/loop.ts';
import { newRunDir, readConfig, readHistory } from '../train/run-dir.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'run-'));
const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const cudaMissing = await probeDevice('cuda').then(
  () => false,
  () => true,
);

const small = { train: take(train, 1024), test: take(test, 500) as Dataset };
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TUTORIAL_RECIPE,
  model: 'cnn',
  batchSize: 32,
  lr: 0.05,
  ...over,
});

describe('training loop', () => {
  it('is deterministic: same seed, 1 thread → identical losses over 3 augmented epochs (120 steps)', async () => {
    const losses = async () => {
      const seen: number[] = [];
      const data = { train: take(train, 1280), test: small.test };
      await trainRun({
        config: config({ epochs: 3, augment: true }),
        dir: tmp(),
        data,
        events: { progress: (p) => seen.push(p.loss) },
      });
      return seen;
    };
    const [a, b] = [await losses(), await losses()];
    expect(a).toHaveLength(120);
    expect(a).toEqual(b);
  });

  it('--plain-epochs trains its last epochs on the images as they are: the same steps as a run without augmentation', async () => {
    const losses = async (over: Partial<TrainConfig>) => {
      const seen: number[] = [];
      await trainRun({
        config: config({ epochs: 2, ...over }),
        dir: tmp(),
        data: small,
        events: { progress: (p) => seen.push(p.loss) },
      });
      return seen;
    };
    const [plain, tail, augmented] = [
      await losses({ augment: false }),
      await losses({ augment: true, plainEpochs: 1 }),
      await losses({ augment: true }),
    ];
    // The augmented first epoch differs from the plain one; the plain epochs draw nothing but the shuffle.
    expect(tail.slice(0, 32)).toEqual(augmented.slice(0, 32));
    expect(tail.slice(0, 32)).not.toEqual(plain.slice(0, 32));
    expect(await losses({ augment: true, plainEpochs: 2 })).toEqual(plain);
    await expect(
      trainRun({ config: config({ augment: true, plainEpochs: 11 }), dir: tmp(), data: small }),
    ).rejects.toThrow("plainEpochs: 11 plain epochs are more than the run's 10");
    await expect(trainRun({ config: config({ plainEpochs: 1 }), dir: tmp(), data: small })).rejects.toThrow(
      'plainEpochs: the run has no augmentation (--augment, --elastic or --erase) to leave out',
    );
  });

  it('resumes exactly: a 4-epoch run stopped after epoch 2 and resumed equals the run done straight', async () => {
    const cfg = config({ epochs: 4, optimizer: 'adamw', lr: 2e-3, schedule: 'onecycle', augment: true });
    const straight = tmp();
    await trainRun({ config: cfg, dir: straight, data: small });
    const split = tmp();
    const stop = new AbortController();
    await trainRun({
      config: cfg,
      dir: split,
      data: small,
      signal: stop.signal,
      events: { epochEnd: (r) => r.epoch === 2 && stop.abort() },
    });
    expect(await readHistory(split)).toHaveLength(2);
    await trainRun({ config: cfg, dir: split, data: small, resume: true });
    const [a, b] = [await readHistory(straight), await readHistory(split)];
    const numbers = (h: typeof a) =>
      h.map(({ trainLoss, testLoss, testAccuracy, lr }) => [trainLoss, testLoss, testAccuracy, lr]);
    expect(numbers(b)).toEqual(numbers(a));
    const [ca, cb] = [
      await loadCheckpoint(join(straight, 'checkpoint.bin')),
      await loadCheckpoint(join(split, 'checkpoint.bin')),
    ];
    expect(cb.trainer.stepCount).toBe(ca.trainer.stepCount);
    for (const [name, t] of ca.trainer.tensors) expect(cb.trainer.tensors.get(name), name).toEqual(t);
  });

  it('a resume refuses a config.json edited after the run started; only epochs (and threads) may change', async () => {
    const cfg = config({ epochs: 2 });
    const dir = tmp();
    const stop = new AbortController();
    await trainRun({ config: cfg, dir, data: small, signal: stop.signal, events: { epochEnd: () => stop.abort() } });
    await expect(
      trainRun({ config: { ...cfg, lr: 0.5, augment: true }, dir, data: small, resume: true }),
    ).rejects.toThrow(
      `${join(dir, 'config.json')} differs from the settings the run trained with (its checkpoint): lr 0.5 (it trained with 0.05), augment true (it trained with false); a resumed run keeps its own`,
    );
    expect(await readHistory(dir)).toHaveLength(1); // untouched
    // A checkpoint holding long values (it is a file like any other): the refusal stays one short line.
    const path = join(dir, 'checkpoint.bin');
    const kept = await loadCheckpoint(path);
    const long = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'x'.repeat(10_000)]));
    await saveCheckpoint(path, { ...kept, config: { ...kept.config, ...long } });
    const refusal = await trainRun({ config: cfg, dir, data: small, resume: true }).catch((e: Error) => e.message);
    expect(refusal).toMatch(/differs from the settings the run trained with/);
    expect(refusal.length).toBeLessThan(2000);
    await saveCheckpoint(path, kept);
    const history = await trainRun({ config: { ...cfg, epochs: 3, threads: 2 }, dir, data: small, resume: true });
    expect(history).toHaveLength(3);
  });

  it('never leaves a corrupt checkpoint when the process is killed mid-write', async () => {
    const dir = tmp();
    const path = join(dir, 'checkpoint.bin');
    await saveCheckpoint(path, {
      epoch: 0,
      trainer: { tensors: new Map([['w', new Float32Array(4)]]), stepCount: 0, rngState: 0 },
      dataRngState: 0,
    });
    for (const delay of [0, 23, 61, 97]) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/write-checkpoints.ts', path], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      // Once it has written one checkpoint it is busy writing the next (32 MB each): kill it mid-way.
      await new Promise((r) => child.stdout.once('data', r));
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      const checkpoint = decodeCheckpoint(readFileSync(path), path); // throws if torn
      const w = checkpoint.trainer.tensors.get('w') as Float32Array;
      expect(w.every((v) => v === checkpoint.epoch)).toBe(true);
    }
    // Only temp files of killed writers may be left beside it, never a torn checkpoint.bin.
    expect(readdirSync(dir).filter((f) => !f.endsWith('.tmp'))).toEqual(['checkpoint.bin']);
  }, 120_000); // four child processes: slow to start on a busy machine

  it('refuses to start a new run in a directory that holds files, unless told to overwrite', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const run = (overwrite: boolean) =>
      trainRun({ config: config({ epochs: 1, limit: 64 }), dir, data: small, overwrite });
    await expect(run(false)).rejects.toThrow(
      `${dir} already holds files (another run?); choose another --out or pass --force`,
    );
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    await expect(run(true)).rejects.toThrow(/holds no run \(no config\.json\)/); // --force replaces runs only
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config({ epochs: 1, limit: 64 }))); // killed before epoch 1
    await run(true);
    await expect(run(false)).rejects.toThrow(/already holds files/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine'); // --force replaces the run's files only
  });

  it('gives runs started in the same second their own directories', async () => {
    const parent = tmp();
    const dirs = await Promise.all([newRunDir(parent), newRunDir(parent), newRunDir(parent)]);
    expect(new Set(dirs).size).toBe(3);
    expect(readdirSync(parent)).toHaveLength(3);
  });

  it('rejects a checkpoint that is truncated', () => {
    expect(() => decodeCheckpoint(new Uint8Array([77, 78, 67, 75, 1, 0, 0, 0, 99, 0, 0, 0]), 'x.bin')).toThrow(
      'x.bin is not a valid checkpoint: truncated header',
    );
  });
});

describe('npm run train', () => {
  const cli = (...args: string[]) => passingCli(main, ...args);
  const failure = (...args: string[]) => failingCli(main, ...args);

  it.skipIf(!cudaMissing)(
    'fails in one line on an unavailable --device, before doing any work',
    async () => {
      const out = join(tmp(), 'run');
      expect(await failure('--device', 'cuda', '--out', out)).toMatch(/^error: cuda is not available: [^\n]+$/);
      expect(existsSync(out)).toBe(false);
    },
    60_000,
  );

  it('--out into a run refuses without --force; --force replaces it', async () => {
    const out = tmp();
    writeFileSync(join(out, 'config.json'), JSON.stringify({ ...TUTORIAL_RECIPE, model: 'resnet' }));
    writeFileSync(join(out, 'checkpoint.bin'), 'a resnet checkpoint');
    expect(await failure('--epochs', '1', '--limit', '256', '--out', out)).toBe(
      `error: ${out} already holds files (another run?); choose another --out or pass --force`,
    );
    expect(readFileSync(join(out, 'checkpoint.bin'), 'utf8')).toBe('a resnet checkpoint');
    await cli('--epochs', '1', '--limit', '256', '--out', out, '--force');
    expect((await loadCheckpoint(join(out, 'checkpoint.bin'))).epoch).toBe(1);
  }, 60_000);

  it('beats chance clearly: > 90% after one epoch on 6,000 images, with the tutorial log lines and a run directory', async () => {
    const out = tmp();
    const { stdout } = await cli('--model', 'cnn', '--epochs', '1', '--limit', '6000', '--lr', '0.05', '--out', out);
    const accuracy = Number(/Accuracy on test set: (\d+) % \[(\d+)\/10000\]/.exec(stdout)?.[2]) / 100;
    expect(accuracy).toBeGreaterThan(90);
    expect(readdirSync(out).sort()).toEqual([
      'accuracy.png',
      'accuracy.svg',
      'checkpoint.bin',
      'config.json',
      'history.json',
      'loss.png',
      'loss.svg',
    ]);
    const [record] = await readHistory(out);
    expect(Object.keys(record ?? {}).sort()).toEqual(
      ['epoch', 'imagesPerSecond', 'lr', 'seconds', 'testAccuracy', 'testLoss', 'trainAccuracy', 'trainLoss'].sort(),
    );
    const svg = readFileSync(join(out, 'accuracy.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    // The PNG is the same chart at twice the size, and not blank: it has dark pixels (axes, text, line).
    const png = PNG.sync.read(readFileSync(join(out, 'accuracy.png')));
    expect(png.width).toBe(2 * Number(/width="(\d+)"/.exec(svg)?.[1]));
    const dark = png.data.filter((v, i) => i % 4 === 0 && v < 128).length;
    expect(dark).toBeGreaterThan(1000);
  }, 60_000);

  it('prints the tutorial loss line every 300 batches', async () => {
    // 300 batches of 4 images: the line's cadence counts batches, whatever their size.
    const { stdout } = await cli('--epochs', '1', '--limit', '1200', '--batch-size', '4', '--out', tmp());
    expect(stdout).toMatch(/^\[1, {3}300\] loss: \d\.\d{3}$/m);
  }, 60_000);

  it('--recipe fast sets its model and optimizer; flags given override the recipe', async () => {
    const out = tmp();
    await cli('--recipe', 'fast', '--epochs', '2', '--limit', '1000', '--lr', '0.005', '--out', out);
    expect(await readConfig(out)).toMatchObject({
      model: 'fast-cnn',
      optimizer: 'adamw',
      schedule: 'onecycle',
      batchSize: 64,
      labelSmoothing: 0.1,
      epochs: 2,
      limit: 1000,
      lr: 0.005,
    });
  }, 60_000);

  it('answers bad flags with one line and exit code 1', async () => {
    const [model, recipe, lr, notRun, conflict, negated, batch, optimizer] = await Promise.all([
      failure('--model', 'lenet'),
      failure('--recipe', 'fastest'),
      failure('--lr', '-0.1'),
      failure('--resume', '/nonexistent/run'),
      failure('--resume', '/some/run', '--model', 'resnet', '--lr', '0.1', '--epochs', '12'),
      failure('--resume', '/some/run', '--no-ema', '--workers'),
      failure('--batch-size', '0'),
      failure('--optimizer', 'rmsprop'),
    ]);
    expect(model).toMatch(
      /^error: option '-m, --model <name>' argument 'lenet' is invalid\. Allowed choices are mlp, cnn/,
    );
    expect(recipe).toMatch(
      /^error: option '--recipe <name>' argument 'fastest' is invalid\. Allowed choices are tutorial, fast, best\.$/,
    );
    expect(lr).toBe("error: option '--lr <rate>' argument '-0.1' is invalid. must be a number > 0.");
    expect(notRun).toBe('error: /nonexistent/run is not a run directory (no config.json)');
    expect(conflict).toBe(
      'error: --resume continues a run with its own settings; only --epochs may change (drop --model, --lr)',
    );
    // Each flag named as it was typed, also the negated ones.
    expect(negated).toBe(
      'error: --resume continues a run with its own settings; only --epochs may change (drop --no-ema, --workers)',
    );
    for (const message of [batch, optimizer]) expect(message.split('\n')).toHaveLength(1);
  }, 180_000);
});
