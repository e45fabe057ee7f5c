/** `npm start`: trains and exports when the repository is empty, then serves the API and the demo; reuses models on the next start. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeDevice } from '../node/device-probe.ts';
import { sharedWebDemo } from '../testkit/web-demo-build.ts';

const cudaMissing = await probeDevice('cuda').then(
  () => false,
  () => true,
);
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
// The demo from the tests' shared build: a fresh clone has no web-demo/dist, and building it here would race other tests.
const START_ARGS = [
  '--import',
  'tsx',
  'start/start.ts',
  '--port',
  '0',
  '--epochs',
  '1',
  '--limit',
  '3000',
  '--web',
  await sharedWebDemo(),
];

function start(
  models: string,
  runs: string,
): { child: ChildProcess; ready: Promise<{ url: string; output: () => string }> } {
  const child = spawn(process.execPath, [...START_ARGS, '--models', models, '--runs', runs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: '1' },
  });
  let output = '';
  const ready = new Promise<{ url: string; output: () => string }>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /draw a digit\s+(http:\/\/\S+)\//.exec(output);
      if (m?.[1]) resolve({ url: m[1], output: () => output });
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('exit', (code) => reject(new Error(`start exited early (${code}):\n${output}`)));
  });
  return { child, ready };
}

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGINT');
  });

describe('npm start', () => {
  it('trains and exports the simple CNN into an empty repository, serves /predict and the demo, stops on Ctrl-C; the next start reuses it', async () => {
    const [models, runs] = [tmp('start-models-'), tmp('start-runs-')];
    // A run of the user's already there: never reused (the repository has no model) and never touched.
    const theirs = join(runs, 'cnn', '2026-01-01T00-00-00');
    mkdirSync(theirs, { recursive: true });
    writeFileSync(join(theirs, 'notes.txt'), 'mine');
    const first = start(models, runs);
    const { url, output } = await first.ready;
    expect(output()).toMatch(/== training cnn \(1 epoch, the tutorial's recipe\) into .*start-runs-.*\/cnn\/\d{4}-/);
    expect(readdirSync(join(runs, 'cnn'))).toHaveLength(2); // a new run directory of its own
    expect(readdirSync(theirs)).toEqual(['notes.txt']);
    expect(readFileSync(join(theirs, 'notes.txt'), 'utf8')).toBe('mine');
    expect(output()).toMatch(/exported .*cnn\/1\/model\.onnx: test accuracy \d+\.\d\d%/);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(await page.text()).toMatch(/Draw a digit/);
    const predict = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pixels: new Array(784).fill(0.5) }),
    });
    expect(((await predict.json()) as { model: string }).model).toBe('cnn');
    expect(await stop(first.child)).toBe(0);

    const second = start(models, runs);
    const again = await second.ready;
    expect(again.output()).not.toMatch(/== training/);
    expect(again.output()).toMatch(/using the models in .*: cnn/);
    expect(await stop(second.child)).toBe(0);
  }, 180_000);

  it.skipIf(!cudaMissing)(
    'fails in one line on an unavailable --device, before training anything',
    async () => {
      const [models, runs] = [tmp('start-models-'), join(tmp('start-runs-'), 'runs')];
      const child = spawn(process.execPath, [...START_ARGS, '--models', models, '--runs', runs, '--device', 'cuda'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CI: '1' },
      });
      let [stdout, stderr] = ['', ''];
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const code = await new Promise((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr.trim()).toMatch(/^error: cuda is not available: [^\n]+$/);
      expect(stdout).toBe('');
      expect(existsSync(runs)).toBe(false);
      expect(readdirSync(models)).toEqual([]);
    },
    60_000,
  );
});
