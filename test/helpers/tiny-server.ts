/** A real server of the tiny repository for one test file: started before its tests, closed after them. */
import { afterAll, beforeAll } from 'vitest';
import { type RunningServer, type ServerOptions, startServer } from '../../serve/server.ts';
import { makeTinyRepository } from './model-repo.ts';

/** Its address once the file's tests run; `options` add to (or override) an ephemeral port and a slow watcher. */
export function useTinyServer(options: Partial<ServerOptions> = {}): { readonly url: string; readonly port: number } {
  let server: RunningServer | undefined;
  beforeAll(async () => {
    server = await startServer({ models: makeTinyRepository(), port: 0, watchIntervalMs: 60_000, ...options });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  }, 30_000);
  const running = () => {
    if (!server) throw new Error('the tiny server is used before it started');
    return server;
  };
  return {
    get url() {
      return running().url;
    },
    get port() {
      return running().port;
    },
  };
}
