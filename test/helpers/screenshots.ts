/**
 * Where the browser tests keep their screenshots: $SCREENSHOT_DIR, else a folder in the OS's temporary
 * directory — never the checkout (tests write only in temporary places). docs/lab*.png are copied from
 * there by hand when the views change.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function screenshotPath(name: string): string {
  const dir = process.env.SCREENSHOT_DIR ?? join(tmpdir(), 'mnist-onnx-cnn-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
