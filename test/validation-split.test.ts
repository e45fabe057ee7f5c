/**
 * --validation: recipes chosen on a held-out tail of the training set, the test set never read. The held-out
 * figures are checked against an ordinary run that trains on the same images and is tested on that tail.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { main as exportMain } from '../export/cli/export.ts';
import { type Dataset, holdOut, loadMnist, take } from '../node/mnist.ts';
import { decodeModel } from '../onnx/codec.ts';
import { expandTrials } from '../sweep/expand.ts';
import { DEFAULT_CLUSTER, emitKubernetes } from '../sweep/k8s.ts';
import { leaderboardTable, readLeaderboard } from '../sweep/leaderboard.ts';
import { parseSweep } from '../sweep/spec.ts';
import { main } from '../train/cli/train.ts';
import { trainRun } from '../train/loop.ts';
import { epochRecordSchema, readHistory } from '../train/run-dir.ts';
import { runMetrics } from '../train/run-metrics.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'validation-'));
const train = take(await loadMnist('train'), 1024);
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TUTORIAL_RECIPE,
  model: 'cnn',
  batchSize: 32,
  lr: 0.05,
  epochs: 2,
  ...over,
});

/** A test set that fails the run if anything reads it. */
const untouchable = new Proxy({} as Dataset, {
  get: (_, key) => {
    throw new Error(`the test set was read (${String(key)})`);
  },
});

describe('--validation', () => {
  it('holds out the training set tail: the same figures as a run trained on the rest and tested on the tail', async () => {
    const logs: string[] = [];
    const validated = tmp();
    await trainRun({
      config: config({ validation: 256, limit: 640 }),
      dir: validated,
      data: { train, test: untouchable },
      events: { log: (line) => logs.push(line) },
    });
    // The independent run: the first 640 images to train on, the last 256 of the 1,024 as its test set
    // (--limit takes the first images of what --validation leaves, so the held-out ones never move).
    const [rest, tail] = [take(train, 640), holdOut(train, 256)[1]];
    const tested = tmp();
    await trainRun({ config: config(), dir: tested, data: { train: rest, test: tail } });

    const [a, b] = [await readHistory(validated), await readHistory(tested)];
    expect(a).toHaveLength(2);
    expect(a.map((h) => [h.trainLoss, h.validationLoss, h.validationAccuracy])).toEqual(
      b.map((h) => [h.trainLoss, h.testLoss, h.testAccuracy]),
    );
    for (const h of a) expect(h).not.toHaveProperty('testAccuracy');
    expect(logs.join('\n')).toContain('640 training images (256 held out for validation)');
    expect(logs.filter((l) => /^Accuracy on validation set: \d+ % \[\d+\/256\]$/.test(l))).toHaveLength(2);
    expect(Object.keys(runMetrics(a))).toEqual([
      'validation_accuracy',
      'best_validation_accuracy',
      'validation_loss',
      'train_seconds',
    ]);
  });

  it('a --validation run never reads the test-set files (a child whose reads of them end it with 97)', () => {
    const train = (...flags: string[]) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', '--import', './test/fixtures/no-test-set.mjs', 'train/cli/train.ts', ...flags],
        { encoding: 'utf8', timeout: 120_000 },
      );
    const common = ['--limit', '600', '--batch-size', '50', '--epochs', '1', '--threads', '1'];
    const held = train(...common, '--validation', '200', '--out', tmp());
    expect(held.status, held.stderr).toBe(0);
    expect(held.stdout).toMatch(/^validation_accuracy=0\.\d{4}$/m);
    // The guard works: the same run scored on the test set ends at its first read of it.
    const scored = train(...common, '--out', tmp());
    expect(scored.status).toBe(97);
    expect(scored.stderr).toMatch(/read the test set: .*t10k-/);
  }, 240_000);

  it('the train command prints validation metrics, never test ones, and refuses what leaves nothing to train on', async () => {
    const dir = tmp();
    const { stdout } = await passingCli(
      main,
      ...['--limit', '600', '--validation', '200', '--batch-size', '50', '--epochs', '1', '--out', dir],
    );
    expect(stdout).toMatch(/^done: validation accuracy \d+\.\d\d% \(best/m);
    expect(stdout).toMatch(/^validation_accuracy=0\.\d{4}$/m);
    expect(stdout).not.toContain('test');
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ limit: 600, validation: 200 });
    expect(readFileSync(join(dir, 'accuracy.svg'), 'utf8')).toContain('validation accuracy');

    // Its export is checked on the same 200 held-out images, and says so; the history's last figure is the
    // training graph's accuracy on them, which the exported model must reproduce.
    const exported = await passingCli(exportMain, '--run', dir, '--out', tmp());
    expect(exported.stdout).toMatch(/^validated on 200 validation images: accuracy \d+\.\d\d%/m);
    const accuracy = Number(exported.stdout.match(/validation images: accuracy ([\d.]+)%/)?.[1]);
    const [record] = JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8'));
    expect(accuracy).toBeCloseTo(record.validationAccuracy, 2);
    const path = exported.stdout.match(/^wrote (\S+model\.onnx)/m)?.[1] as string;
    const metadata = new Map(decodeModel(readFileSync(path)).metadata_props?.map((p) => [p.key, p.value]));
    expect(metadata.get('validation_accuracy')).toBe(accuracy.toFixed(2));
    expect(metadata.has('test_accuracy')).toBe(false);
    expect(metadata.get('training_recipe')).toContain('last 200 training images held out, first 600 training images');

    const message = await failingCli(main, '--limit', '59950', '--validation', '100', '--out', tmp());
    expect(message).toBe(
      'error: --limit 59950 with --validation 100: only 59900 of the 60000 training images are left to train on',
    );
    expect(await failingCli(main, '--validation', '60000', '--out', tmp())).toBe(
      'error: cannot hold out 60000 of 60000 training images: at least one must remain to train on',
    );
  });

  it('a sweep with validation in its base ranks on it and asks Katib for validation_accuracy', async () => {
    const spec = parseSweep({ name: 'v', base: { model: 'cnn', validation: 100 }, grid: { seed: [0, 1] } }, 'v.yaml');
    const trials = expandTrials(spec);
    expect(trials[0]?.flags).toMatchObject({ validation: 100 });
    const outDir = tmp();
    await emitKubernetes({ file: 'v.yaml', spec, text: '', trials, outDir, parallel: 2, ...DEFAULT_CLUSTER }, () => {});
    const experiment = parse(readFileSync(join(outDir, 'katib-experiment.yaml'), 'utf8'));
    expect(experiment.spec.objective).toMatchObject({
      objectiveMetricName: 'validation_accuracy',
      additionalMetricNames: ['best_validation_accuracy', 'validation_loss', 'train_seconds'],
    });
    expect(experiment.spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command).toContain('--validation');
    // Trials ranked together must hold out the same images.
    const refusal = (file: object) => {
      try {
        parseSweep({ name: 'w', ...file }, 'w.yaml');
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refusal({ grid: { validation: [100, 200] } })).toMatch(/^w\.yaml: grid\.validation: set it in base/);
    // --limit takes the first images of the rest: searching it is fine, within the images left.
    expect(refusal({ base: { validation: 10_000 }, random: { limit: { min: 200, max: 50_000 } }, trials: 2 })).toBe(
      'accepted',
    );
    expect(refusal({ base: { validation: 10_000 }, grid: { limit: [40_000, 55_000] } })).toBe(
      "w.yaml: grid.limit: at most 50000: the training images left beside validation's 10000",
    );
    expect(refusal({ base: { validation: 10_000, limit: 60_000 }, grid: { seed: [0, 1] } })).toMatch(
      /^w\.yaml: base\.limit: at most 50000/,
    );
    expect(refusal({ base: { validation: 60_000 }, grid: { seed: [0, 1] } })).toMatch(/below the 60000 training/);

    // The leaderboard of two trials run with --validation.
    const dir = tmp();
    for (const [i, trial] of trials.entries())
      await trainRun({
        config: config({ epochs: 1, limit: 400, validation: 100, seed: i }),
        dir: join(dir, trial.name),
        data: { train, test: untouchable },
      });
    const rows = await readLeaderboard(dir, trials);
    expect(rows.map((r) => r.evaluatedOn)).toEqual(['validation', 'validation']);
    expect(rows[0]?.accuracy).toBeGreaterThanOrEqual(rows[1]?.accuracy ?? 100);
    expect(leaderboardTable(rows)).toContain('| validation accuracy | best (epoch) | validation loss |');
    // The winner's final run: the same flags on every image, without --validation.
    expect(rows[0]?.command).toContain('--validation 100');
    expect(rows[0]?.finalCommand).toBe(rows[0]?.command.replace(' --validation 100', ''));
  });

  it('an epoch record holds one set whole: test or validation, never a mix or a half', () => {
    const base = { epoch: 1, trainLoss: 0.5, trainAccuracy: 90, seconds: 1, imagesPerSecond: 100, lr: 0.01 };
    const ok = (extra: object) => epochRecordSchema.safeParse({ ...base, ...extra }).success;
    expect(ok({ testLoss: 0.1, testAccuracy: 97 })).toBe(true);
    expect(ok({ validationLoss: 0.1, validationAccuracy: 97 })).toBe(true);
    expect(ok({})).toBe(false);
    expect(ok({ testLoss: 0.1 })).toBe(false);
    expect(ok({ testLoss: 0.1, validationLoss: 0.1, validationAccuracy: 97 })).toBe(false);
    expect(ok({ testLoss: 0.1, testAccuracy: 97, validationLoss: 0.1, validationAccuracy: 97 })).toBe(false);
  });

  it('resume and export refuse a config.json whose validation was edited, before reading any data', async () => {
    const dir = tmp();
    const cfg = config({ epochs: 1, limit: 300, validation: 100 });
    await trainRun({ config: cfg, dir, data: { train, test: untouchable } });
    expect((await readHistory(dir))[0]?.validationImages).toBe(100);
    const { validation: _, ...dropped } = cfg;
    const edits = [
      [dropped, 'the run was evaluated on the validation set, but its config.json now asks for the test set'],
      [{ ...cfg, validation: 50 }, 'the run held out 100 training images, but its config.json now says validation 50'],
    ] as const;
    for (const [edited, message] of edits) {
      // The data given would throw if read: the refusal comes first.
      const unread = { train: untouchable, test: untouchable };
      await expect(trainRun({ config: { ...edited, epochs: 2 }, dir, resume: true, data: unread })).rejects.toThrow(
        message,
      );
      // export reads config.json from the directory: edit it there.
      const copy = tmp();
      cpSync(dir, copy, { recursive: true });
      writeFileSync(join(copy, 'config.json'), JSON.stringify(edited));
      expect(await failingCli(exportMain, '--run', copy, '--out', tmp())).toContain(message);
    }
    expect(await readHistory(dir)).toHaveLength(1);
  });
});
