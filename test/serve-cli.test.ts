/**
 * `npm run serve` failures in our own words: a missing device, a bad or busy port — before any model loads; and its
 * signal listeners, which an in-process run must not leave behind.
 */

import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { main } from '../serve/cli.ts';
import { stopSignal } from '../serve/server.ts';
import { failingCli } from './helpers/cli.ts';

const models = mkdtempSync(join(tmpdir(), 'models-'));

it('exits with one line when the device is missing', async () => {
  const stderr = await failingCli(main, '--models', models, '--port', '0', '--device', 'cuda', '--quiet');
  expect(stderr.split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/^error: cuda is not available: onnxruntime-node was installed without its CUDA provider/);
});

it('refuses a --max-batch past the 1024 it serves in one line (before: every model without its own config went unserved)', async () => {
  const stderr = await failingCli(main, '--models', models, '--port', '0', '--max-batch', '2000');
  expect(stderr).toMatch(/^error: option '--max-batch <n>' argument '2000' is invalid\. must be at most 1024\.$/);
});

it('explains a bad port and a busy port in one line', async () => {
  const bad = await failingCli(main, '--models', models, '--port', '99999');
  expect(bad).toMatch(
    /^error: option '--port <n>' argument '99999' is invalid\. must be a port number from 1 to 65535/,
  );
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = String((busy.address() as { port: number }).port);
  try {
    const stderr = await failingCli(main, '--models', models, '--port', port, '--quiet');
    expect(stderr).toBe(
      `error: port ${port} on 127.0.0.1 is already in use (another server?): choose another with --port`,
    );
  } finally {
    busy.close();
  }
});

it('listens for SIGINT and SIGTERM until disposed, and hears the first', async () => {
  const count = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');
  const before = count();
  const stop = stopSignal();
  expect(count()).toBe(before + 2);
  // Its own listener, called as a signal would (a real SIGTERM would reach the test runner's listeners too).
  (process.listeners('SIGTERM').at(-1) as (signal: NodeJS.Signals) => void)('SIGTERM');
  expect(await stop.received).toBe('SIGTERM');
  stop.dispose();
  expect(count()).toBe(before);
});
