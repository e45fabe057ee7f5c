/**
 * Triton's model repository extension over gRPC — RepositoryModelLoad and RepositoryModelUnload beside
 * RepositoryIndex — called as tritonclient.grpc calls them (its parameters: `unload_dependents`, `config`,
 * file overrides), under the HTTP routes' rules: explicit mode only, and off loopback the key (metadata
 * `authorization: Bearer <key>`) or nothing.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { grpcService } from '../serve/grpc/proto.ts';
import { type RunningServer, type ServerOptions, startServer } from '../serve/server.ts';
import { oddModel } from '../testkit/odd-models.ts';

const model = oddModel({ metadata: { normalization: 'folded (test)' } });
const repo = (...names: string[]) => {
  const root = mkdtempSync(join(tmpdir(), 'models-grpc-control-'));
  for (const name of names) {
    mkdirSync(join(root, name, '1'), { recursive: true });
    writeFileSync(join(root, name, '1', 'model.onnx'), model);
  }
  return root;
};

const servers: RunningServer[] = [];
const clients: grpc.Client[] = [];
afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((s) => s.close()));
});

const Service = grpcService();

/** A client of the server's gRPC port; `call(method, request, key?)` answers [status name, details, reply]. */
async function serve(options: Omit<ServerOptions, 'port' | 'grpcPort'>) {
  const server = await startServer({ port: 0, grpcPort: 0, ...options });
  servers.push(server);
  const client = new Service(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (
      request: unknown,
      metadata: grpc.Metadata,
      callback: (error: grpc.ServiceError | null, reply: unknown) => void,
    ) => void
  > &
    grpc.Client;
  clients.push(client);
  const call = (method: string, request: unknown, key?: string) =>
    new Promise<[string, string, unknown]>((resolve) => {
      const metadata = new grpc.Metadata();
      if (key !== undefined) metadata.set('authorization', `Bearer ${key}`);
      client[method]?.call(client, request, metadata, (error, reply) =>
        resolve(error ? [grpc.status[error.code] ?? String(error.code), error.details, undefined] : ['OK', '', reply]),
      );
    });
  const states = async () =>
    ((await call('RepositoryIndex', {}))[2] as { models: { name: string; state: string }[] }).models.map(
      (m) => `${m.name}:${m.state}`,
    );
  return { server, call, states };
}

const image = new Float32Array(784).fill(0.5);
const inferRequest = (name: string) => ({
  model_name: name,
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }],
  raw_input_contents: [Buffer.from(image.buffer)],
});

describe('gRPC model control', () => {
  it('loads and unloads in explicit mode as tritonclient.grpc asks, and says why it will not', async () => {
    const { call, states } = await serve({ models: repo('a', 'b'), modelControlMode: 'explicit', loadModels: ['a'] });
    expect(await states()).toEqual(['a:READY', 'b:UNAVAILABLE']);
    expect((await call('ModelInfer', inferRequest('b')))[0]).toBe('NOT_FOUND');

    // load_model('b'): no parameters.
    expect(await call('RepositoryModelLoad', { model_name: 'b' })).toEqual(['OK', '', {}]);
    expect(await states()).toEqual(['a:READY', 'b:READY']);
    expect((await call('ModelInfer', inferRequest('b')))[0]).toBe('OK');
    // unload_model('b'): it always sends unload_dependents.
    const dependents = { unload_dependents: { bool_param: false } };
    expect(await call('RepositoryModelUnload', { model_name: 'b', parameters: dependents })).toEqual(['OK', '', {}]);
    expect(await states()).toEqual(['a:READY', 'b:UNAVAILABLE']);
    expect((await call('ModelInfer', inferRequest('b')))[0]).toBe('NOT_FOUND');

    const refusals = await Promise.all([
      call('RepositoryModelLoad', { model_name: 'nope' }),
      call('RepositoryModelLoad', { model_name: 'b', parameters: { config: { string_param: '{}' } } }),
      call('RepositoryModelLoad', {
        model_name: 'b',
        parameters: { 'file:1/model.onnx': { bytes_param: Buffer.from(model) } },
      }),
      call('RepositoryModelLoad', { model_name: 'b', repository_name: 'elsewhere' }),
      call('RepositoryModelUnload', { model_name: 'b', parameters: { unload_dependents: { string_param: 'yes' } } }),
      call('RepositoryModelUnload', { model_name: 'b', parameters: { force: { bool_param: true } } }),
    ]);
    expect(refusals).toEqual([
      ['NOT_FOUND', "the repository has no model 'nope'", undefined],
      ['INVALID_ARGUMENT', "load takes no parameters here; got 'config'", undefined],
      ['INVALID_ARGUMENT', expect.stringMatching(/^model files are taken over HTTP/), undefined],
      ['INVALID_ARGUMENT', expect.stringMatching(/one model repository/), undefined],
      ['INVALID_ARGUMENT', 'unload_dependents must be a bool_param', undefined],
      ['INVALID_ARGUMENT', expect.stringMatching(/but 'unload_dependents'; got 'force'/), undefined],
    ]);
    // A request of more parameters than any client sends is refused unread.
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, { bool_param: true }]));
    expect(await call('RepositoryModelLoad', { model_name: 'b', parameters: many })).toEqual([
      'INVALID_ARGUMENT',
      'the request has more than 16 entries of field 3',
      undefined,
    ]);
    expect(await states()).toEqual(['a:READY', 'b:UNAVAILABLE']);
  }, 60_000);

  it('refuses load and unload outside explicit mode', async () => {
    const { call } = await serve({ models: repo('a') });
    const [status, details] = await call('RepositoryModelUnload', { model_name: 'a' });
    expect([status, details]).toEqual(['INVALID_ARGUMENT', expect.stringContaining('explicit mode')]);
  }, 60_000);

  it('off loopback: PERMISSION_DENIED without a configured key, UNAUTHENTICATED without the right one', async () => {
    const open = await serve({ models: repo('a'), host: '0.0.0.0', modelControlMode: 'explicit' });
    const [status, details] = await open.call('RepositoryModelLoad', { model_name: 'a' });
    expect([status, details]).toEqual(['PERMISSION_DENIED', expect.stringContaining('--api-key')]);
    expect(await open.states()).toEqual(['a:UNAVAILABLE']); // reading is open

    const keyed = await serve({ models: repo('a'), host: '0.0.0.0', modelControlMode: 'explicit', apiKey: 'sesame' });
    expect((await keyed.call('RepositoryModelLoad', { model_name: 'a' }))[0]).toBe('UNAUTHENTICATED');
    expect((await keyed.call('RepositoryModelLoad', { model_name: 'a' }, 'wrong'))[0]).toBe('UNAUTHENTICATED');
    expect(await keyed.states()).toEqual(['a:UNAVAILABLE']);
    expect(await keyed.call('RepositoryModelLoad', { model_name: 'a' }, 'sesame')).toEqual(['OK', '', {}]);
    expect(await keyed.states()).toEqual(['a:READY']);
    expect((await keyed.call('RepositoryModelUnload', { model_name: 'a' }))[0]).toBe('UNAUTHENTICATED');
    expect(await keyed.call('RepositoryModelUnload', { model_name: 'a' }, 'sesame')).toEqual(['OK', '', {}]);
  }, 60_000);
});
