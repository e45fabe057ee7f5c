/**
 * npm run dev -- [--api http://127.0.0.1:8080] [--port 5173]
 *
 * The web demo with live reload (Vite), its API calls proxied to a running server (`npm run serve`).
 * Says at start, and again whenever a proxied call fails, when no API answers at that address.
 */
import { resolve } from 'node:path';
import { createServer, type ProxyOptions } from 'vite';
import { type CliIo, lines, processIo } from '../node/cli/io.ts';
import { port } from '../node/cli/options.ts';
import { newProgram } from '../node/cli/program.ts';
import { runCommand } from '../node/cli/run-cli.ts';
import { runIfMain } from '../node/cli/run-if-main.ts';

const command = (io: CliIo) =>
  newProgram('dev', io)
    .description('Run the web demo with live reload, proxying the API to a running server')
    .option(
      '--api <url>',
      'the inference server to proxy /api, /predict, /models, /v2 and /docs to',
      'http://127.0.0.1:8080',
    )
    .option('--port <n>', 'port of the dev server', port, 5173);

const API_PATHS = ['/api', '/predict', '/models', '/v2', '/docs', '/openapi.json'];

async function apiAnswers(api: string): Promise<boolean> {
  try {
    return (await fetch(new URL('/v2/health/live', api), { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const warn = lines(io.err);
    const { api, port: devPort } = command(io).parse(argv, { from: 'user' }).opts<{ api: string; port: number }>();
    let target: URL;
    try {
      target = new URL(api);
    } catch {
      throw new Error(`--api '${api}' is not a URL (e.g. http://127.0.0.1:8080)`);
    }
    const noApi = `no API answers at ${target.origin}: start one with \`npm run serve\` (or pass --api <url>)`;
    if (!(await apiAnswers(target.origin))) warn(`warning: ${noApi}; the page will show errors until it does`);
    let warned = false;
    const proxy: ProxyOptions = {
      target: target.origin,
      configure: (server) => {
        server.on('error', () => {
          if (!warned) warn(`warning: ${noApi}`);
          warned = true;
        });
      },
    };
    const server = await createServer({
      configFile: resolve(import.meta.dirname, 'vite.config.ts'),
      server: { port: devPort, proxy: Object.fromEntries(API_PATHS.map((p) => [p, proxy])) },
    });
    await server.listen();
    server.printUrls();
    lines(io.out)(`API: ${target.origin}`);
  });
}

runIfMain(import.meta.url, main);
