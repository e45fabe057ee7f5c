/**
 * Every array and object in a v2 inference request is bounded before its elements are looked at: a
 * 130,000-entry `shape` was a 500 (zod spread one issue per entry into `push(...)` and overflowed the
 * stack) and 524,000 `outputs` held the event loop for a second and 260 MB. Each is now a 400 naming the
 * limit, sent as JSON or as the binary extension's header.
 */
import { expect, it } from 'vitest';
import { HEADER_LENGTH } from '../serve/binary-tensors.ts';
import { INFER_LIMITS } from '../serve/schemas.ts';
import { refusalOf } from './helpers/refusal.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

const server = useTinyServer();

const input = { name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: new Array(784).fill(0.5) };
/** The attacker's input: as small as a tensor gets, leaving the body to the array under test. */
const small = { name: 'input', datatype: 'FP32', shape: [1], data: [] };
const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));

/** A JSON body just under 1 MiB: `[` + n copies of `item` + `]`, spliced where `"@"` stands in `around`. */
const filled = (around: object, item: string, n: number) =>
  JSON.stringify(around).replace('"@"', `[${new Array(n).fill(item).join(',')}]`);

const infer = async (body: string, binary = false) => {
  const response = await fetch(`${server.url}/v2/models/tiny/infer`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      ...(binary ? { [HEADER_LENGTH]: String(Buffer.byteLength(body)) } : {}),
    },
  });
  const json = (await response.json()) as { outputs?: unknown[] };
  return { status: response.status, json, error: response.ok ? undefined : refusalOf(json, '/v2/models/tiny/infer') };
};

it('answers attacker-sized arrays and objects with 400 naming the limit, as JSON and as a binary header', async () => {
  const cases: [string, string, RegExp][] = [
    [
      '130k invalid shape entries',
      filled({ inputs: [{ ...small, shape: '@' }] }, '-1', 130_000),
      /inputs\.0\.shape.*<=8/,
    ],
    ['130k valid shape entries', filled({ inputs: [{ ...small, shape: '@' }] }, '1', 130_000), /inputs\.0\.shape.*<=8/],
    ['524k outputs', filled({ inputs: [small], outputs: '@' }, '0', 524_000), /outputs.*<=16/],
    ['17 outputs', JSON.stringify({ inputs: [input], outputs: new Array(17).fill({ name: 'logits' }) }), /<=16/],
    ['200k inputs', filled({ inputs: '@' }, '0', 200_000), /inputs.*<=16/],
    ['40k request parameters', JSON.stringify({ inputs: [input], parameters: keys(40_000) }), /at most 32 entries/],
    [
      'input parameters as an array',
      JSON.stringify({ inputs: [{ ...input, parameters: [] }] }),
      /inputs\.0\.parameters.*at most 32/,
    ],
    [
      '33 output parameters',
      JSON.stringify({ inputs: [input], outputs: [{ name: 'logits', parameters: keys(33) }] }),
      /outputs\.0\.parameters/,
    ],
  ];
  for (const [what, body, message] of cases) {
    expect(Buffer.byteLength(body), what).toBeLessThan(1024 * 1024);
    for (const binary of [false, true]) {
      const { status, error } = await infer(body, binary);
      // A binary header over 65,536 bytes is refused for its size before it is parsed.
      const large = binary && Buffer.byteLength(body) > 65_536;
      expect([what, binary, status, error?.code]).toEqual([
        what,
        binary,
        400,
        large ? 'invalid_header' : 'invalid_request',
      ]);
      expect(error?.message, what).toMatch(large ? /at most 65536/ : message);
    }
  }
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
});

it('still answers requests within the limits: 32 parameters on the request and on each output', async () => {
  const parameters = { ...keys(31), binary_data_output: false };
  const outputs = [{ name: 'logits', parameters: keys(INFER_LIMITS.parameters) }];
  const { status, json } = await infer(JSON.stringify({ inputs: [input], outputs, parameters }));
  expect(status).toBe(200);
  expect(json.outputs).toHaveLength(1);
  // 16 outputs (the limit) are not refused for their number: the tiny model has one, so they repeat it,
  // which is refused for that (a name asked for twice), not for the count.
  const sixteen = await infer(
    JSON.stringify({ inputs: [input], outputs: new Array(INFER_LIMITS.tensors).fill({ name: 'logits' }) }),
  );
  expect([sixteen.status, sixteen.error?.code, sixteen.error?.message]).toEqual([
    400,
    'invalid_outputs',
    "output 'logits' is requested twice",
  ]);
});
