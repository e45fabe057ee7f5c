/**
 * The API description: an OpenAPI 3.1 document generated from the route definitions, valid by an
 * independent validator, covering every route the server answers (with path parameters, request bodies
 * per content type and error schemas), and Swagger UI served from npm-installed assets (no network).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../serve/server.ts';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ models: mkdtempSync(join(tmpdir(), 'models-')), port: 0 });
});
afterAll(async () => {
  await server?.close();
});

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
type Spec = { openapi: string; paths: Record<string, Record<string, Operation>> };

it('is a valid OpenAPI 3.1 document covering every route, with path parameters, bodies and error schemas', async () => {
  const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as Spec;
  const validator = new Validator();
  const result = await validator.validate(spec as unknown as Parameters<Validator['validate']>[0]);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(spec.openapi).toBe('3.1.0');

  const expected: Record<string, string[]> = {
    '/predict': ['post'],
    '/predict/{model}': ['post'],
    '/predict/{model}/{version}': ['post'],
    '/v2': ['get'],
    '/v2/health/live': ['get'],
    '/v2/health/ready': ['get'],
    '/v2/models/{model}': ['get'],
    '/v2/models/{model}/ready': ['get'],
    '/v2/models/{model}/config': ['get'],
    '/v2/models/{model}/infer': ['post'],
    '/v2/models/{model}/versions/{version}': ['get'],
    '/v2/models/{model}/versions/{version}/ready': ['get'],
    '/v2/models/{model}/versions/{version}/config': ['get'],
    '/v2/models/{model}/versions/{version}/infer': ['post'],
    '/v2/models/stats': ['get'],
    '/v2/models/{model}/stats': ['get'],
    '/v2/models/{model}/versions/{version}/stats': ['get'],
    '/v2/repository/index': ['post'],
    '/v2/repository/models/{model}/load': ['post'],
    '/v2/repository/models/{model}/unload': ['post'],
    '/api/models': ['get'],
    '/models/{model}/{version}/model.onnx': ['get'],
    '/metrics': ['get'],
    '/api/mnist/{split}': ['get'],
  };
  expect(Object.keys(spec.paths).sort()).toEqual(Object.keys(expected).sort());
  for (const [path, methods] of Object.entries(expected)) {
    const operations = spec.paths[path] as Record<string, Operation>;
    expect(Object.keys(operations).sort(), path).toEqual(methods);
    for (const [method, op] of Object.entries(operations)) {
      // Every {param} in the path is declared as a required path parameter.
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path' && p.required).map((p) => p.name);
      expect(declared.sort(), `${method} ${path}`).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());
      if (method === 'post') {
        expect(op.requestBody, `${method} ${path}`).toBeDefined();
        const errors = Object.entries(op.responses).filter(([status]) => status.startsWith('4'));
        expect(errors.length, `${method} ${path}`).toBeGreaterThan(0);
        for (const [, response] of errors) expect(response.content?.['application/json']?.schema).toBeDefined();
      }
    }
  }
  // /predict's body formats: one content type per decoder, the same list the 415 message names.
  const content = Object.keys(spec.paths['/predict']?.post?.requestBody?.content ?? {});
  expect(content.sort()).toEqual(
    [
      'application/json',
      'application/octet-stream',
      'image/gif',
      'image/jpeg',
      'image/png',
      'image/webp',
      'multipart/form-data',
    ].sort(),
  );
  const refused = (await (
    await fetch(`${server.url}/predict`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/csv' } })
  ).json()) as { error: { message: string } };
  for (const type of content) expect(refused.error.message).toContain(type);

  // Every route in the document answers (none is a 404 "no route").
  for (const path of Object.keys(expected)) {
    const url = path.replace('{model}', 'nope').replace('{version}', '1').replace('{split}', 'test?count=1');
    const method = expected[path]?.[0]?.toUpperCase() as string;
    const r = await fetch(`${server.url}${url}`, {
      method,
      ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
    });
    const body = r.headers.get('content-type')?.includes('json')
      ? ((await r.json()) as { error?: { code: string } })
      : {};
    expect(body.error?.code, `${method} ${url}`).not.toBe('not_found');
  }
});

it('serves Swagger UI from npm-installed assets, with no network', async () => {
  const page = await (await fetch(`${server.url}/docs`)).text();
  const assets = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
  expect(assets.length).toBeGreaterThanOrEqual(4);
  for (const asset of assets) {
    expect(asset.startsWith('/'), `${asset} is served by us, not a CDN`).toBe(true);
    const r = await fetch(`${server.url}${asset}`);
    expect(r.status, asset).toBe(200);
    expect((await r.arrayBuffer()).byteLength, asset).toBeGreaterThan(10);
  }
  expect(page).not.toMatch(/https?:\/\//);
});
