/** `npm run serve` failures in our own words: a missing device, a bad or busy port — before any model loads. */

import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { failingScript } from './helpers/cli.ts';

const models = mkdtempSync(join(tmpdir(), 'models-'));

it('exits with one line when the device is missing', async () => {
  const stderr = await failingScript('serve/cli.ts', '--models', models, '--port', '0', '--device', 'cuda', '--quiet');
  expect(stderr.split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/^error: cuda is not available: onnxruntime-node was installed without its CUDA provider/);
});

it('explains a bad port and a busy port in one line', async () => {
  const bad = await failingScript('serve/cli.ts', '--models', models, '--port', '99999');
  expect(bad).toMatch(
    /^error: option '--port <n>' argument '99999' is invalid\. must be a port number from 1 to 65535/,
  );
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = String((busy.address() as { port: number }).port);
  try {
    const stderr = await failingScript('serve/cli.ts', '--models', models, '--port', port, '--quiet');
    expect(stderr).toBe(
      `error: port ${port} on 127.0.0.1 is already in use (another server?): choose another with --port`,
    );
  } finally {
    busy.close();
  }
});
