/**
 * npm run serve -- [--models models] [--port 8080] [--host 127.0.0.1] [--device auto|cpu|cuda|webgpu]
 *                  [--threads N] [--max-batch 64] [--batch-delay-ms 2] [--max-body-bytes 1048576] [--cors]
 *                  [--load-budget-ms 30000] [--run-budget-ms 10000] [--max-loaded-versions 32] [--max-queued-images 2048]
 *                  [--exit-timeout-ms 15000] [--max-connections 1024]
 *                  [--max-connections-per-client 256] [--write-timeout-ms 30000] [--max-large-responses 16]
 *                  [--model-control-mode poll|explicit|none] [--load-model NAME]... [--api-key KEY]
 *                  [--grpc-port 8001] [--allow-upload] [--max-upload-bytes 16777216]
 *
 * Serves every model in the repository: /predict, the Open Inference Protocol v2, /api/models,
 * /metrics, /docs, and the web demo at / (built first when missing). Ctrl-C or SIGTERM stops it
 * gracefully.
 */
import { Option } from 'commander';
import { NODE_DEVICES as DEVICES, type NodeDevice as Device } from '../core/ort-runtime.ts';
import { type CliIo, lines, processIo } from '../node/cli/io.ts';
import { nonNegativeNumber, oneOf, port, positiveInt, upTo } from '../node/cli/options.ts';
import { newProgram } from '../node/cli/program.ts';
import { runCommand } from '../node/cli/run-cli.ts';
import { runIfMain } from '../node/cli/run-if-main.ts';
import { shownName } from '../node/repository.ts';
import { DEFAULT_MAX_BODY_BYTES } from './body.ts';
import { CONNECTION_DEFAULTS } from './connections.ts';
import { LARGE_RESPONSE_DEFAULTS } from './large-responses.ts';
import { MODEL_CONTROL_MODES, type ModelControlMode, SERVE_DEFAULTS } from './repository.ts';
import { MAX_SERVED_BATCH } from './runner/limits.ts';
import { MAX_PREDICT_IMAGES } from './schemas.ts';
import { EXIT_TIMEOUT_MS, startServer, stopSignal } from './server.ts';
import { UNREAD_ANSWER_DEFAULTS } from './unread-answers.ts';
import { ensureWebDemo, WEB_ROOT } from './web-build.ts';

const d = SERVE_DEFAULTS;
const command = (io: CliIo) =>
  newProgram('serve', io)
    .description('Serve the model repository over HTTP')
    .option('--models <dir>', 'model repository (<name>/<version>/model.onnx)', 'models')
    .option('--port <n>', 'port (0: any free port)', port, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--device <name>', `execution provider: ${DEVICES.join(', ')}`, oneOf(DEVICES), d.device)
    .option('--threads <n>', 'ORT intra-op threads per model', positiveInt, d.threads)
    .option(
      '--max-batch <n>',
      `largest batch one ORT run takes, at most ${MAX_SERVED_BATCH} (a config.pbtxt may set its own)`,
      upTo(MAX_SERVED_BATCH, positiveInt),
      d.maxBatch,
    )
    .option(
      '--batch-delay-ms <ms>',
      'how long the first request waits for company (0: no batching delay)',
      nonNegativeNumber,
      d.batchDelayMs,
    )
    .option(
      '--load-budget-ms <ms>',
      'longest a model may take to load and pass its checks (over it: not ready, with the reason)',
      positiveInt,
      d.loadBudgetMs,
    )
    .option(
      '--run-budget-ms <ms>',
      'longest one inference run may take (over it: the request fails and the version is quarantined until its file changes)',
      positiveInt,
      d.runBudgetMs,
    )
    .option(
      '--max-loaded-versions <n>',
      'model versions served at once, each in its own runner process (more are not ready, with the reason)',
      positiveInt,
      d.maxLoadedVersions,
    )
    .option(
      '--max-queued-images <n>',
      "images waiting for a model version's runs, shared by client address (past it a request takes room from the address holding most, or is answered 503 queue_full; the run in flight not counted; keep it at least twice the largest request)",
      positiveInt,
      d.maxQueuedImages,
    )
    .option(
      '--exit-timeout-ms <ms>',
      'on SIGTERM, how long requests already queued still run before they are answered 503 and connections cut',
      positiveInt,
      EXIT_TIMEOUT_MS,
    )
    .option(
      '--max-connections <n>',
      'open connections at once (the oldest idle one is closed to make room)',
      positiveInt,
      CONNECTION_DEFAULTS.total,
    )
    .option(
      '--max-connections-per-client <n>',
      'open connections from one address (behind a proxy all clients share one: raise it)',
      positiveInt,
      CONNECTION_DEFAULTS.perClient,
    )
    .option(
      '--max-unread-bytes-per-client <n>',
      'unsent inference answers one address may hold; past it its requests get 503 unread_answers (behind a proxy all clients share one: raise it)',
      positiveInt,
      UNREAD_ANSWER_DEFAULTS.perClient,
    )
    .option(
      '--write-timeout-ms <ms>',
      'a response (an answer, MNIST, a model file) whose client takes no bytes for this long is cut off',
      positiveInt,
      LARGE_RESPONSE_DEFAULTS.writeTimeoutMs,
    )
    .option(
      '--max-large-responses <n>',
      'big responses in flight at once (more get 503 with Retry-After)',
      positiveInt,
      LARGE_RESPONSE_DEFAULTS.maxConcurrent,
    )
    .option('--allow-upload', 'take model files over HTTP as new versions (the same key rules as load/unload)', false)
    .option('--max-upload-bytes <n>', 'the largest model file taken with --allow-upload', positiveInt, 16 * 1024 * 1024)
    .option('--max-body-bytes <n>', 'the body limit of every route', positiveInt, DEFAULT_MAX_BODY_BYTES)
    .option('--cors', 'allow cross-origin requests (off: POSTs from other origins get 403)', false)
    .option('--quiet', 'no per-request log lines', false)
    .option('--web <dir>', 'serve the web demo from this build (default: web-demo/dist, built on the first start)')
    .option(
      '--model-control-mode <mode>',
      `as Triton's: poll (rescan for new files), explicit (load/unload only through /v2/repository), none (load at start only)`,
      oneOf(MODEL_CONTROL_MODES),
      'poll',
    )
    .option(
      '--load-model <name>',
      'explicit mode: a model to load at start (repeatable)',
      (name: string, all: string[]) => [...all, name],
      [] as string[],
    )
    .option('--grpc-port <n>', 'also serve the v2 protocol over gRPC on this port (Triton uses 8001)', port)
    .addOption(
      new Option(
        '--api-key <key>',
        'key for /v2/repository/models/<m>/load and /unload (Authorization: Bearer); needed for them off loopback',
      ).env('MNIST_SERVE_API_KEY'),
    );

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const print = lines(io.out);
    const o = command(io).parse(argv, { from: 'user' }).opts<{
      models: string;
      port: number;
      host: string;
      device: Device;
      threads: number;
      maxBatch: number;
      batchDelayMs: number;
      loadBudgetMs: number;
      runBudgetMs: number;
      maxLoadedVersions: number;
      maxQueuedImages: number;
      exitTimeoutMs: number;
      maxBodyBytes: number;
      maxConnections: number;
      maxConnectionsPerClient: number;
      writeTimeoutMs: number;
      maxUnreadBytesPerClient: number;
      maxLargeResponses: number;
      cors: boolean;
      quiet: boolean;
      allowUpload: boolean;
      maxUploadBytes: number;
      modelControlMode: ModelControlMode;
      loadModel: string[];
      apiKey?: string;
      grpcPort?: number;
      web?: string;
    }>();
    const webRoot = o.web ?? WEB_ROOT;
    const largest = Math.max(o.maxBatch, MAX_PREDICT_IMAGES);
    if (o.maxQueuedImages < 2 * largest)
      lines(io.err)(
        `note: --max-queued-images ${o.maxQueuedImages} is under twice the largest request (${largest} images): one client's request can hold the queue while others are refused`,
      );
    // Before anything listens: a SIGTERM while the first models load (readiness may be 200 by then) killed the
    // process outright, cutting requests under way and leaving its temporary folders.
    const stop = stopSignal();
    const server = await startServer({
      ...o,
      stopping: stop.signal,
      largeResponses: { writeTimeoutMs: o.writeTimeoutMs, maxConcurrent: o.maxLargeResponses },
      unreadAnswers: {
        perClient: o.maxUnreadBytesPerClient,
        total: Math.max(UNREAD_ANSWER_DEFAULTS.total, o.maxUnreadBytesPerClient),
      },
      loadModels: o.loadModel,
      uploads: o.allowUpload ? { maxBytes: o.maxUploadBytes } : undefined,
      webRoot,
      log: print,
      requestLog: !o.quiet,
    }).catch((error: unknown) => {
      stop.dispose();
      throw error;
    });
    try {
      // After listening (a busy port or a missing device fails first); the demo route serves the build once it
      // exists. A signal meanwhile waits for the build (~20 s, once): a build cut half-way would be served.
      if (!o.web) await ensureWebDemo(WEB_ROOT, print); // a build given with --web is served as it is
      // Under explicit model control nothing new is picked up: say which models asked for serve nothing (the
      // server is not ready until they do), not the poll mode's hint.
      const explicit = o.modelControlMode === 'explicit';
      const unserved = o.loadModel.filter((name) => !server.repository.versions(name).some((v) => v.ready));
      const names = unserved.map((name) => `'${shownName(name)}'`).join(', ');
      if (stop.signal.aborted) {
        // Stopping already: no advice.
      } else if (explicit && unserved.length > 0)
        print(
          `not ready: --load-model ${names} serves no version from ${o.models} (load it with POST /v2/repository/models/<name>/load once it is there, or unload it)`,
        );
      else if (!explicit && server.repository.readyCount === 0)
        print(`no model loaded from ${o.models} yet (train and export one; new files are picked up while serving)`);
      print(
        `serving on ${server.url}  (demo ${server.url}/, POST ${server.url}/predict, API docs ${server.url}/docs, metrics ${server.url}/metrics)`,
      );
      // With --grpc-port 0 this line is the only way to learn the port.
      if (server.grpcPort !== undefined) print(`gRPC (KServe v2 / Triton) on port ${server.grpcPort}`);
      print(`${await stop.received}: finishing in-flight requests and stopping`);
    } finally {
      await server.close();
      stop.dispose();
    }
  });
}

runIfMain(import.meta.url, async (argv) => {
  const code = await main(argv);
  // A model load under way (one asked for through the API) keeps its runner process, and with it this event
  // loop, alive up to its load budget after the server has stopped (an outside attack: 39 s after SIGTERM
  // against a 3 s exit timeout): the server is closed, so the process ends a moment later however that goes
  // (within the exit timeout and a second in all, with the 503s' 750 ms).
  setTimeout(() => process.exit(code), 200).unref();
  return code;
});
