/**
 * Path and query parameters are validated by @hono/zod-openapi before a handler runs, and the app's
 * defaultHook answers a failure in the project's words: the same status, code and message on every route
 * that takes a version, and a body is still checked before the version, as it always was.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createApp } from '../serve/app.ts';
import { createMetrics } from '../serve/metrics.ts';
import { ModelRepository } from '../serve/repository.ts';
import { refusalOf } from './helpers/refusal.ts';

// The whole app over an empty repository: versions are checked before any model is looked up.
const app = createApp({
  repository: new ModelRepository(mkdtempSync(join(tmpdir(), 'models-'))),
  metrics: createMetrics(),
});

const pixels = JSON.stringify({ pixels: new Array(784).fill(0.5) });
const tensor = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) }],
});
/** Every route with a {version}, as a request for version `v`. */
const withVersion = (v: string): [string, RequestInit][] => [
  [`/v2/models/m/versions/${v}`, {}],
  [`/v2/models/m/versions/${v}/ready`, {}],
  [`/v2/models/m/versions/${v}/stats`, {}],
  [`/models/m/${v}/model.onnx`, {}],
  [`/predict/m/${v}`, { method: 'POST', body: pixels, headers: { 'content-type': 'application/json' } }],
  [
    `/v2/models/m/versions/${v}/infer`,
    { method: 'POST', body: tensor, headers: { 'content-type': 'application/json' } },
  ],
];
/** The status and the refusal (its shape checked for the route: the protocol's on /v2, ours elsewhere). */
const answer = async (path: string, init: RequestInit = {}) => {
  const response = await app.request(path, init);
  return { status: response.status, error: refusalOf(await response.json(), path.split('?')[0] as string) };
};

it('a malformed version is 400 invalid_version in our words, on every route that takes one', async () => {
  const long = '9'.repeat(60);
  // [the version sent, as the message shows it]
  const versions: [string, string][] = [
    ['0', '0'],
    ['abc', 'abc'],
    ['01', '01'],
    ['1234567890', '1234567890'],
    ['-1', '-1'],
    [long, long.slice(0, 40)],
  ];
  for (const [raw, shown] of versions)
    for (const [path, init] of withVersion(raw))
      expect(await answer(path, init), path).toEqual({
        status: 400,
        error: { code: 'invalid_version', message: `version '${shown}' is not a positive integer` },
      });
});

it('a well-formed version reaches the handler as a number: an unknown model is 404, not 400', async () => {
  for (const [path, init] of withVersion('7')) {
    const { status, error } = await answer(path, init);
    expect(status, path).toBe(404);
    expect(error.code, path).toBe('model_not_found');
  }
});

it('a body is checked before the version, as before the routes were typed', async () => {
  const broken = { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } };
  for (const path of ['/predict/m/abc', '/v2/models/m/versions/abc/infer'])
    expect((await answer(path, broken)).error.code, path).toBe('invalid_json');
});

it('an MNIST split is checked before its count, and a repeated count takes the first', async () => {
  expect(await answer('/api/mnist/foo?count=0')).toEqual({
    status: 404,
    error: { code: 'not_found', message: "no MNIST split 'foo' (train or test)" },
  });
  const repeated = await app.request('/api/mnist/test?count=3&count=4');
  expect(repeated.status).toBe(200);
  expect(repeated.headers.get('x-mnist-count')).toBe('3');
});
