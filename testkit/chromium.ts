/** Headless Debian Chromium through playwright-core (never a downloaded browser); a fresh profile each launch. */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];
export const chromiumPath = CANDIDATES.find((p) => existsSync(p));

export async function launch(extraArgs: string[] = []): Promise<Browser> {
  if (!chromiumPath) throw new Error('Debian chromium is not installed (apt-get install chromium)');
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}
