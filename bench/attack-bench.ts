/**
 * `npm run bench -- --what attack`: /v2/health/live latency and the server's memory while it is attacked
 * the ways test/serve-hostile-*.test.ts attack it, at full scale and with the default limits. The server
 * runs in its own process (`npm run serve`, as users run it) on a repository that is itself hostile the
 * whole time: a config.pbtxt that is a FIFO, one repeating a field 40,000 times, a model with 10,000
 * version folders. RSS is the server process's own (each model's runner process is separate); the
 * baseline is the idle server after one MNIST download (the cached split included).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostileModel } from '../testkit/hostile-models.ts';
import { oddModel } from '../testkit/odd-models.ts';
import { startServeProcess } from '../testkit/serve-process.ts';
import type { BenchReport } from './report.ts';
import { percentile } from './stats.ts';

interface AttackRow {
  attack: string;
  probes: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  /** Peak server RSS above the idle baseline, MiB. */
  rssMiB: number;
}

const SECONDS = 6;
const OTHER = '127.0.0.2';

function hostileRepository(): string {
  const root = mkdtempSync(join(tmpdir(), 'bench-attack-'));
  const put = (name: string, bytes: Uint8Array, version = 1) => {
    mkdirSync(join(root, name, String(version)), { recursive: true });
    writeFileSync(join(root, name, String(version), 'model.onnx'), bytes);
  };
  put('tiny', oddModel({ metadata: { normalization: 'folded (bench)' } }));
  put('slow', hostileModel('slow-when-triggered'));
  put('fifo', oddModel());
  execFileSync('mkfifo', [join(root, 'fifo', 'config.pbtxt')]);
  put('repeated', oddModel());
  writeFileSync(join(root, 'repeated', 'config.pbtxt'), 'max_batch_size: 8\n'.repeat(40_000));
  put('versions', oddModel());
  for (let v = 2; v <= 10_000; v++) mkdirSync(join(root, 'versions', String(v)));
  return root;
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

/**
 * One health check on a connection of its own, as a load balancer's checks come (fetch would reuse one kept
 * alive and never wait to be accepted); true when it answered 200 within 5 s.
 */
function freshProbe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = httpGet(`${url}/v2/health/live`, { agent: false, timeout: 5000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200));
      response.on('error', () => resolve(false));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

/** Health probes every 50 ms for `SECONDS`, and the server's peak RSS, while `attack` runs. */
async function measure(url: string, pid: number, attack: string, start: () => () => void, idleMiB: number) {
  const stop = start();
  const times: number[] = [];
  let failed = 0;
  let peak = rssOf(pid);
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    if (!(await freshProbe(url))) failed++;
    times.push(performance.now() - t);
    peak = Math.max(peak, rssOf(pid));
    await new Promise((r) => setTimeout(r, 50));
  }
  stop();
  await new Promise((r) => setTimeout(r, 500));
  return {
    attack,
    probes: times.length,
    failed,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    max: Math.max(...times),
    rssMiB: peak - idleMiB,
  } satisfies AttackRow;
}

const port = (url: string) => Number(new URL(url).port);
const openSocket = (url: string, localAddress?: string) => {
  const socket: Socket = connect({ host: '127.0.0.1', port: port(url), localAddress });
  socket.on('error', () => {});
  return socket;
};

/**
 * Run a flood `script` in a Node process of its own; the returned stop throws if it had died early (a flood
 * that never ran would make a quiet row look like a defence).
 */
function floodProcess(script: string): () => void {
  const flood = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  flood.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  return () => {
    if (flood.exitCode !== null) throw new Error(`the flood process exited early: ${errors.slice(0, 500)}`);
    flood.kill('SIGKILL');
  };
}

/**
 * Keep `count` connections open that never send a byte, reopened as the server closes them. In its own
 * process: the churn would otherwise slow this process's probes, not the server's answers.
 */
function silentFlood(url: string, count: number): () => void {
  const script = `
    const net = require('node:net');
    const open = () => {
      const s = net.connect({ host: '127.0.0.1', port: ${port(url)}, localAddress: '${OTHER}' });
      s.on('error', () => {});
      s.once('close', () => setTimeout(open, 10));
    };
    for (let i = 0; i < ${count}; i++) open();`;
  return floodProcess(script);
}

/**
 * `count` connections from four addresses, each posting 1 KB of gzip that decodes to 1 MB of nested `[`
 * (about 80 ms of JSON parsing each, a 400 in the end), reopened as each is answered: the flood behind the
 * ninth outside attack's 9–20 s accept stall. In its own process, as above.
 */
function expensiveBodies(url: string, count: number): () => void {
  const script = `
    const net = require('node:net');
    const zlib = require('node:zlib');
    const body = zlib.gzipSync('['.repeat(524000) + ']'.repeat(524000), { level: 9 });
    const head = 'POST /v2/models/tiny/infer HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n' +
      'Content-Encoding: gzip\\r\\nContent-Length: ' + body.length + '\\r\\nConnection: close\\r\\n\\r\\n';
    let n = 0;
    const open = () => {
      const s = net.connect({ host: '127.0.0.1', port: ${port(url)}, localAddress: '127.0.0.' + (2 + (n++ % 4)) });
      s.on('error', () => {});
      s.once('close', () => setTimeout(open, 10));
      s.on('data', () => s.destroy());
      s.write(head);
      s.write(body);
    };
    for (let i = 0; i < ${count}; i++) open();`;
  return floodProcess(script);
}

/** `count` clients ask for the 47 MB training split and never read. */
function stalledReaders(url: string, count: number): () => void {
  const sockets = Array.from({ length: count }, () => {
    const s = openSocket(url, OTHER);
    s.write('GET /api/mnist/train HTTP/1.1\r\nHost: x\r\n\r\n');
    s.pause();
    return s;
  });
  return () => {
    for (const s of sockets) s.destroy();
  };
}

/** `count` uploads of a 1 MiB body at a few bytes a second. */
function tricklingUploads(url: string, count: number): () => void {
  const sockets = Array.from({ length: count }, () => {
    const s = openSocket(url, OTHER);
    s.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n[');
    return s;
  });
  const timer = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('0,');
  }, 200);
  return () => {
    clearInterval(timer);
    for (const s of sockets) s.destroy();
  };
}

/**
 * Requests that make the slow model run past its budget. Each one quarantines it, so its file is then
 * rewritten (other bytes, same behaviour) and the next request waits for the reload: load, kill, reload.
 */
function slowModel(url: string, root: string): () => void {
  let stopped = false;
  let round = 0;
  const data = Array.from({ length: 784 }, () => 0);
  data[0] = 2;
  const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data }] });
  const loop = async () => {
    while (!stopped) {
      await fetch(`${url}/v2/models/slow/infer`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      })
        .then((r) => r.arrayBuffer())
        .catch(() => {});
      round++;
      if (stopped) break;
      writeFileSync(join(root, 'slow', '1', 'model.onnx'), hostileModel('slow-when-triggered', 5000 - (round % 2)));
      await new Promise((r) => setTimeout(r, 1500));
    }
  };
  const running = loop();
  return () => {
    stopped = true;
    void running;
  };
}

export async function benchAttack(): Promise<BenchReport> {
  const root = hostileRepository();
  const { url, child } = await startServeProcess(['--models', root, '--run-budget-ms', '1000']);
  const pid = child.pid as number;
  try {
    await (await fetch(`${url}/api/mnist/train`)).arrayBuffer(); // the cached split is part of the baseline
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssOf(pid);
    const rows: AttackRow[] = [];
    rows.push(await measure(url, pid, 'none (hostile repository only, rescanned every second)', () => () => {}, idle));
    rows.push(
      await measure(
        url,
        pid,
        '1,000 silent connections from one address, refilled',
        () => silentFlood(url, 1000),
        idle,
      ),
    );
    rows.push(
      await measure(url, pid, '40 clients that never read /api/mnist/train', () => stalledReaders(url, 40), idle),
    );
    rows.push(await measure(url, pid, '60 uploads of 1 MiB at 10 B/s', () => tricklingUploads(url, 60), idle));
    rows.push(
      await measure(url, pid, 'a model whose run never ends in time (budget 1 s)', () => slowModel(url, root), idle),
    );
    // Last: the memory its parsing takes stays with the process and would count in the rows after it.
    rows.push(
      await measure(
        url,
        pid,
        '1,000 connections from 4 addresses posting 1 KB of gzip that decodes to 1 MB, refilled',
        () => expensiveBodies(url, 1000),
        idle,
      ),
    );
    const markdown = [
      '# Health under attack: GET /v2/health/live every 50 ms, server RSS',
      '',
      `Each probe on a new connection (as a load balancer checks), so a probe also waits to be accepted; a probe that fails or takes over 5 s counts as failed. ${SECONDS} s per attack; default limits except \`--run-budget-ms 1000\`; the repository holds a FIFO config.pbtxt, a config repeating a field 40,000 times and 10,000 version folders throughout. Idle server RSS (one MNIST split cached): ${idle.toFixed(0)} MiB.`,
      '',
      '| attack | probes | failed | p50 ms | p99 ms | max ms | peak RSS above idle, MiB |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.attack} | ${r.probes} | ${r.failed} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.rssMiB.toFixed(0)} |`,
      ),
      '',
    ].join('\n');
    return { kind: 'attack', markdown, json: { seconds: SECONDS, idleMiB: idle, rows } };
  } finally {
    child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}
