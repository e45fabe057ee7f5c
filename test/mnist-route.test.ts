/** GET /api/mnist/{train|test}?count=N: MNIST for the browser, compact, cached, bounded. */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../serve/app.ts';
import { createMetrics } from '../serve/metrics.ts';
import { ModelRepository } from '../serve/repository.ts';

// The whole app (its error handling included), over an empty model repository.
const app = createApp({
  repository: new ModelRepository(mkdtempSync(join(tmpdir(), 'models-'))),
  metrics: createMetrics(),
});

describe('GET /api/mnist/:split', () => {
  it('returns N labels then N×784 pixels — MNIST’s own first digits', async () => {
    const response = await app.request('/api/mnist/train?count=10');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    const body = new Uint8Array(await response.arrayBuffer());
    expect(body.length).toBe(10 * 785);
    // The first ten training labels of MNIST (LeCun's train-labels-idx1-ubyte).
    expect(Array.from(body.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    const firstImage = body.subarray(10, 10 + 784);
    expect(firstImage[0]).toBe(0); // background corner
    expect(Math.max(...firstImage)).toBe(255); // ink
    const test = new Uint8Array(await (await app.request('/api/mnist/test?count=5')).arrayBuffer());
    expect(Array.from(test.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
  });

  it('is cacheable: a strong ETag per split and count, 304 on If-None-Match', async () => {
    const first = await app.request('/api/mnist/test?count=3');
    const etag = first.headers.get('etag');
    expect(etag).toBe('"mnist-test-3"');
    expect(first.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const again = await app.request('/api/mnist/test?count=3', { headers: { 'If-None-Match': etag as string } });
    expect(again.status).toBe(304);
    expect((await again.arrayBuffer()).byteLength).toBe(0);
  });

  it('defaults to the whole split and refuses counts out of range or malformed, and unknown splits, with JSON', async () => {
    const all = await app.request('/api/mnist/test');
    expect((await all.arrayBuffer()).byteLength).toBe(10_000 * 785);
    for (const bad of ['0', '10001', '-1', '1e3', 'abc', '5.5', '99999999999']) {
      const response = await app.request(`/api/mnist/test?count=${bad}`);
      expect(response.status, bad).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_count');
    }
    const unknown = await app.request('/api/mnist/secret?count=1');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { code: 'not_found', message: "no MNIST split 'secret' (train or test)" },
    });
  });
});
