/**
 * Multipart bodies whose shape is the attack. Parsing runs on the event loop and costs per part and per
 * header byte: 14,500 empty parts in 1 MiB took ~700 ms (health waited as long), one 1 MiB filename
 * ~100 ms. The server counts parts and bounds their headers before parsing, and refuses past the limits
 * with a 413 naming them; a form with a few fields besides the image still reads.
 */
import { expect, it } from 'vitest';
import { MULTIPART_LIMITS } from '../serve/multipart-limits.ts';
import { zeroPng } from './helpers/hostile.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

const server = useTinyServer();

const B = 'qz7Kb';
const part = (headers: string, content: string | Buffer = '') =>
  Buffer.concat([Buffer.from(`--${B}\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')]);
const multipart = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from(`--${B}--\r\n`)]);

const post = async (body: Buffer, type = `multipart/form-data; boundary=${B}`) => {
  const response = await fetch(`${server.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: new Uint8Array(body),
  });
  const json = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, type: response.headers.get('content-type'), error: json.error };
};

it('refuses 14,500 empty file parts in 1 MiB with a 413 naming the limit, and health answers meanwhile', async () => {
  const empty = part('Content-Disposition: form-data; name="file"; filename="a"');
  const body = multipart(...Array.from({ length: Math.floor((1 << 20) / empty.length) - 1 }, () => empty));
  expect(body.length).toBeLessThanOrEqual(1 << 20);
  const [answers, health] = await Promise.all([
    Promise.all(Array.from({ length: 4 }, () => post(body))),
    fetch(`${server.url}/v2/health/live`),
  ]);
  for (const answer of answers)
    expect(answer).toEqual({
      status: 413,
      type: 'application/json',
      error: { code: 'too_many_parts', message: `a multipart body may have at most ${MULTIPART_LIMITS.parts} parts` },
    });
  expect(health.status).toBe(200);
});

it('refuses a part whose headers run past the limit (a 512 KiB filename, 100,000 header lines)', async () => {
  const cases: [string, Buffer][] = [
    ['a 512 KiB filename', part(`Content-Disposition: form-data; name="file"; filename="${'a'.repeat(1 << 19)}"`)],
    ['a 512 KiB name', part(`Content-Disposition: form-data; name="${'a'.repeat(1 << 19)}"`)],
    ['100,000 header lines', part(`Content-Disposition: form-data; name="file"\r\n${'X: a\r\n'.repeat(100_000)}`)],
  ];
  for (const [what, hostile] of cases) {
    expect([what, await post(multipart(hostile))]).toEqual([
      what,
      {
        status: 413,
        type: 'application/json',
        error: {
          code: 'part_headers_too_large',
          message: `the headers of a multipart part may take at most ${MULTIPART_LIMITS.headerBytes} bytes`,
        },
      },
    ]);
  }
});

it('parses with the boundary it counted, so a confusing content type cannot hide parts', async () => {
  // A MIME parser reads `boundary=evil` as part of foo's quoted value; a naive search would count `evil`.
  const empty = part('Content-Disposition: form-data; name="f"');
  const type = `multipart/form-data; foo="x; boundary=evil"; boundary=${B}`;
  expect((await post(multipart(...Array.from({ length: 100 }, () => empty)), type)).error?.code).toBe('too_many_parts');
  // Boundaries a parser would unescape (or that RFC 2046 doesn't allow) are refused, not guessed at.
  for (const boundary of ['"a\\\\b"', `"${'b'.repeat(71)}"`, '""'])
    expect((await post(multipart(empty), `multipart/form-data; boundary=${boundary}`)).error?.code).toBe(
      'invalid_multipart',
    );
});

it('still reads the image of a form with a few other fields, up to the limit', async () => {
  const image = Buffer.from(await zeroPng(28, 28));
  const fields = Array.from({ length: MULTIPART_LIMITS.parts - 1 }, (_, i) =>
    part(`Content-Disposition: form-data; name="field${i}"`, `value ${i}`),
  );
  const file = part(
    'Content-Disposition: form-data; name="file"; filename="digit.png"\r\nContent-Type: image/png',
    image,
  );
  // An all-black image reaches the digit preprocessing (and is refused there as blank): the form was read.
  expect((await post(multipart(...fields, file))).error?.code).toBe('blank_image');
  expect((await post(multipart(...fields, fields[0] as Buffer, file))).error?.code).toBe('too_many_parts');
});

it('reads a file whose bytes contain the boundary text (legal: only CRLF and -- before it ends a part)', async () => {
  // Node 20's formData() refused such a body (400 invalid_multipart), so an upload failed or not by its bytes.
  const image = Buffer.concat([Buffer.from(await zeroPng(28, 28)), Buffer.from(`tail ${B} and --${B} text`)]);
  const file = part(
    'Content-Disposition: form-data; name="file"; filename="digit.png"\r\nContent-Type: image/png',
    image,
  );
  const plain = part(
    'Content-Disposition: form-data; name="file"; filename="digit.png"',
    Buffer.from(await zeroPng(28, 28)),
  );
  const expected = (await post(multipart(plain))).error?.code;
  expect(expected).toBe('blank_image');
  expect((await post(multipart(file))).error?.code).toBe(expected);
});

it('refuses a body that ends inside a part (file, field, second file, headers) with a 400, and keeps serving', async () => {
  // busboy destroys an open file part's stream with an error when the form ends early; unheard, that error
  // was an uncaught exception that would end the server process (an unterminated upload crashed it).
  const image = Buffer.from(await zeroPng(28, 28));
  const file = part('Content-Disposition: form-data; name="file"; filename="digit.png"', image);
  const other = part('Content-Disposition: form-data; name="other"; filename="x.bin"', image);
  const field = part('Content-Disposition: form-data; name="note"', 'some text');
  const cases: [string, Buffer][] = [
    ['inside the file', file.subarray(0, file.length - 40)],
    ['inside the file, at its CRLF', file.subarray(0, file.length - 1)],
    ['inside another file part', other.subarray(0, other.length - 40)],
    ['inside a second file after the first', Buffer.concat([file, file.subarray(0, file.length - 40)])],
    ['inside a text field', field.subarray(0, field.length - 3)],
    ['inside part headers', Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filena`)],
    ['after a whole part, no closing boundary', file],
  ];
  for (const [what, body] of cases) {
    const answer = await post(body);
    expect([what, answer.status, answer.type, answer.error?.code]).toEqual([
      what,
      400,
      'application/json',
      'invalid_multipart',
    ]);
  }
  expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
});
