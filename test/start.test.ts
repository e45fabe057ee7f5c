/** `npm start`: trains and exports when the repository is empty, then serves the API and the demo; reuses models on the next start. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function start(models: string): { child: ChildProcess; ready: Promise<{ url: string; output: () => string }> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'serve/start.ts', '--models', models, '--port', '0', '--epochs', '1', '--limit', '3000'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1' },
    },
  );
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
    const models = mkdtempSync(join(tmpdir(), 'start-models-'));
    const first = start(models);
    const { url, output } = await first.ready;
    expect(output()).toMatch(/== training cnn \(1 epoch, the tutorial's recipe\)/);
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

    const second = start(models);
    const again = await second.ready;
    expect(again.output()).not.toMatch(/== training/);
    expect(again.output()).toMatch(/using the models in .*: cnn/);
    expect(await stop(second.child)).toBe(0);
  }, 180_000);
});
