/**
 * A model name a client sends comes back in a 404 cut to the longest valid name (100 characters) on every
 * route, not echoed whole: a path segment can be as long as the headers allow (16 KB).
 */
import { expect, it } from 'vitest';
import { MAX_MODEL_NAME_LENGTH } from '../node/repository.ts';
import { refusalFrom } from './helpers/refusal.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

// Explicit model control, so load and unload answer for an unknown model too.
const server = useTinyServer({ modelControlMode: 'explicit', loadModels: ['tiny'] });

it('cuts an unknown model name to 100 characters in every 404', async () => {
  const name = 'n'.repeat(5000);
  const json = { 'content-type': 'application/json' };
  const infer = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1], data: [0] }] });
  const requests: [string, RequestInit][] = [
    [`/v2/models/${name}`, {}],
    [`/v2/models/${name}/ready`, {}],
    [`/v2/models/${name}/stats`, {}],
    [`/v2/models/${name}/infer`, { method: 'POST', body: infer, headers: json }],
    [`/predict/${name}`, { method: 'POST', body: JSON.stringify({ pixels: new Array(784).fill(0) }), headers: json }],
    [`/v2/repository/models/${name}/load`, { method: 'POST' }],
    [`/v2/repository/models/${name}/unload`, { method: 'POST' }],
  ];
  for (const [path, init] of requests) {
    const response = await fetch(`${server.url}${path}`, init);
    const error = await refusalFrom(response, path);
    const route = path.replace(name, '<name>');
    expect([route, response.status, error.code]).toEqual([route, 404, 'model_not_found']);
    expect(error.message, route).toContain(`'${'n'.repeat(MAX_MODEL_NAME_LENGTH)}'`);
  }
});
