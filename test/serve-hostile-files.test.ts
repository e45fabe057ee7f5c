/**
 * A model repository laid out to freeze the server: config.pbtxt as a FIFO (a blocking read never returns)
 * and as a link to /dev/zero (never ends), model.onnx as both, a config repeating one field 40,000 times,
 * 10,000 version folders, and folders whose names can't be served. The server starts, every hostile file
 * is refused unread and reported once, health answers throughout the rescans, and it stops when asked.
 */
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';
import { oddModel } from '../testkit/odd-models.ts';

const VERSIONS = 10_000;
const REPEATS = 40_000;

let server: RunningServer | undefined;
let root: string;
const logs: string[] = [];

function model(name: string, version = 1): string {
  const dir = join(root, name, String(version));
  mkdirSync(dir, { recursive: true });
  return join(dir, 'model.onnx');
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'models-'));
  const bytes = oddModel();
  writeFileSync(model('fifo'), bytes);
  execFileSync('mkfifo', [join(root, 'fifo', 'config.pbtxt')]);
  writeFileSync(model('zero'), bytes);
  symlinkSync('/dev/zero', join(root, 'zero', 'config.pbtxt'));
  // A config linked to a file outside the repository: never read (its parse error would quote it).
  writeFileSync(model('outside'), bytes);
  const secret = join(mkdtempSync(join(tmpdir(), 'secret-')), 'secret.txt');
  writeFileSync(secret, 'SECRET-outside-repo 42\n');
  symlinkSync(secret, join(root, 'outside', 'config.pbtxt'));
  execFileSync('mkfifo', [model('fifomodel')]);
  symlinkSync('/dev/zero', model('zeromodel'));
  // 470 KB of one repeated field (the text-format parser used to copy the list at each one: quadratic).
  writeFileSync(model('big'), bytes);
  const versions = Array.from({ length: REPEATS }, (_, i) => `versions: ${i + 1}`).join('\n');
  writeFileSync(join(root, 'big', 'config.pbtxt'), `version_policy { specific {\n${versions}\n} }\n`);
  // 10,000 versions (hard links: one file's space), of which Triton's default policy serves the newest.
  const first = model('many', 1);
  writeFileSync(first, bytes);
  for (let v = 2; v <= VERSIONS; v++) linkSync(first, model('many', v));
  writeFileSync(join(root, 'many', 'config.pbtxt'), 'version_policy { latest { num_versions: 1 } }\n');
  // Names that can't be served: said once, not silently ignored.
  writeFileSync(model('Bad_Name'), bytes);
  mkdirSync(join(root, 'many', 'latest'));
  writeFileSync(join(root, 'notes.txt'), 'a stray file is nobody’s model');
  // The damaged repository of serve-reload.test.ts, seen by the asynchronous scan the same way.
  symlinkSync('/nonexistent/models', join(root, 'dangling'));
  symlinkSync('/nonexistent/model.onnx', model('brokenversion'));
  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('loop-a', join(root, 'loop-b'));
  server = await startServer({ models: root, port: 0, watchIntervalMs: 50, log: (l) => logs.push(l) });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const url = () => (server as RunningServer).url;

it('answers health within 2 s all through the rescans', async () => {
  let worst = 0;
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    const start = performance.now();
    const response = await fetch(`${url()}/v2/health/live`, { signal: AbortSignal.timeout(2000) });
    expect(response.status).toBe(200);
    worst = Math.max(worst, performance.now() - start);
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(worst).toBeLessThan(2000);
  console.log(`worst /v2/health/live during rescans of ${VERSIONS} versions: ${worst.toFixed(0)} ms`);
});

it('serves the models beside a FIFO, /dev/zero or outside-the-repository config with the defaults, and never reads such a model file', async () => {
  const list = (await (await fetch(`${url()}/api/models`)).json()) as {
    name: string;
    versions: { version: number }[];
  }[];
  const versions = Object.fromEntries(list.map((m) => [m.name, m.versions.map((v) => v.version)]));
  expect(versions).toEqual({ big: [1], fifo: [1], many: [VERSIONS], outside: [1], zero: [1] });
});

it('reports each hostile file and each unservable folder once, and counts them', async () => {
  await new Promise((r) => setTimeout(r, 500)); // several more scans
  const once = (text: string) =>
    expect(
      logs.filter((l) => l.includes(text)),
      text,
    ).toHaveLength(1);
  once('fifo/config.pbtxt (ENOTFILE)');
  once('zero/config.pbtxt (links outside its model folder)');
  once('outside/config.pbtxt (links outside its model folder)');
  expect(logs.join('\n')).not.toContain('SECRET');
  once('fifomodel/1/model.onnx (ENOTFILE)');
  once('zeromodel/1/model.onnx (ENOTFILE)');
  once('cannot use Bad_Name (invalid model name)');
  once('cannot use many/latest (not a version number)');
  once('cannot use dangling (ENOENT)');
  once('cannot use brokenversion/1/model.onnx (ENOENT)');
  once('cannot use loop-a (ELOOP)');
  expect(logs.join('\n')).not.toContain('notes.txt');
  const metrics = await (await fetch(`${url()}/metrics`)).text();
  expect(metrics).toContain('model_repository_scan_errors_total{cause="invalid model name"} 1');
  expect(metrics).toContain('model_repository_scan_errors_total{cause="not a version number"} 1');
  expect(metrics).toContain('model_repository_scan_errors_total{cause="ENOTFILE"} 3');
  expect(metrics).toContain('model_repository_scan_errors_total{cause="links outside its model folder"} 2');
});

it('stops when asked, FIFOs and all', async () => {
  const start = Date.now();
  await server?.close();
  server = undefined;
  expect(Date.now() - start).toBeLessThan(10_000);
});
