/**
 * vitest's global setup: every temporary folder the suite makes (its own, its servers', Chromium's,
 * Python's) goes under one folder, removed when the run ends, instead of ~250 loose folders left in the
 * machine's /tmp by every run. Workers and the processes they start inherit TMPDIR, which os.tmpdir() reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'mnist-onnx-cnn-suite-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
