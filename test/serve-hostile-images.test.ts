/**
 * Images whose header is the attack: under the pixel limit, but with a side no photo of a digit has. A
 * 15,999,999×1 16-bit PNG (125 KB) drove libvips to 2–4 GB while decoding and a 1×16,000,000 one cost ~4 s
 * of CPU; both, and every image past the side or aspect limits, are refused from their header on every
 * way /predict takes an image, with the server's memory unmoved. Images within the limits still decode.
 */
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { decodeImage, type ImageError } from '../serve/images.ts';
import { pixelChunksOnly } from '../serve/png-chunks.ts';
import { zeroPng } from './helpers/hostile.ts';
import { useTinyServer } from './helpers/tiny-server.ts';

const server = useTinyServer();

type ErrorBody = { error?: { code: string; message: string } };

/** The same image sent each way /predict takes one: raw bytes, base64 in JSON, a multipart file. */
const ways = (bytes: Uint8Array, type: string): [string, RequestInit][] => {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(bytes)], { type }), 'digit');
  return [
    ['/predict', { body: new Uint8Array(bytes), headers: { 'content-type': type } }],
    [
      '/predict/tiny',
      {
        body: JSON.stringify({ image: Buffer.from(bytes).toString('base64') }),
        headers: { 'content-type': 'application/json' },
      },
    ],
    ['/predict/tiny/1', { body: form }],
  ];
};

const blackJpeg = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: 'black' } })
    .jpeg()
    .toBuffer()
    .then((b) => new Uint8Array(b));
const asPng = (bytes: Uint8Array): RequestInit => ({
  body: new Uint8Array(bytes),
  headers: { 'content-type': 'image/png' },
});

const post = async (path: string, init: RequestInit) => {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', ...init });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: (await response.json()) as ErrorBody,
  };
};

/** The server's (this process's) highest RSS while `work` runs, above what it was before, in MiB. */
async function rssRise(work: () => Promise<void>): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return (Math.max(peak, process.memoryUsage().rss) - before) / 2 ** 20;
}

it('refuses a 15,999,999×1 16-bit PNG and a 1×16,000,000 one from the header, each way, with memory unmoved', async () => {
  const wide = await zeroPng(15_999_999, 1, 16, 6);
  const tall = await zeroPng(1, 16_000_000);
  expect(wide.length).toBeLessThan(200_000);
  // sharp loaded and warm, so its first use isn't counted as the attack's memory.
  expect((await post('/predict', asPng(await zeroPng(40, 40)))).status).toBe(422);
  const answers: Awaited<ReturnType<typeof post>>[] = [];
  const rise = await rssRise(async () => {
    for (const bytes of [wide, tall])
      for (const [path, init] of ways(bytes, 'image/png')) answers.push(await post(path, init));
  });
  for (const answer of answers) {
    expect(answer.status).toBe(413);
    expect(answer.type).toMatch(/^application\/json/);
    expect(answer.body.error?.code).toBe('image_too_large');
    expect(answer.body.error?.message).toMatch(/each side at most 8,192 pixels/);
  }
  // Before the header check: 2–4 GB for the wide one. Generous: the test process also holds the requests.
  expect(rise).toBeLessThan(256);
});

it('names the limit an image breaks: a side over 8,192, an aspect over 20:1, pixels over 16 M', async () => {
  const cases: [string, Uint8Array, string, number, string, RegExp][] = [
    ['8193×1000 PNG', await zeroPng(8193, 1000), 'image/png', 413, 'image_too_large', /8,193×1,000.*8,192/],
    ['9000×600 JPEG', await blackJpeg(9000, 600), 'image/jpeg', 413, 'image_too_large', /9,000×600.*8,192/],
    ['8192×300 PNG', await zeroPng(8192, 300), 'image/png', 422, 'extreme_aspect_ratio', /8,192×300.*20 times/],
    ['1×21 PNG', await zeroPng(1, 21), 'image/png', 422, 'extreme_aspect_ratio', /20 times/],
    ['5000×4000 PNG', await zeroPng(5000, 4000), 'image/png', 413, 'image_too_large', /16,000,000 pixels/],
  ];
  for (const [what, bytes, type, status, code, message] of cases) {
    const answer = await post('/predict', { body: new Uint8Array(bytes), headers: { 'content-type': type } });
    expect([what, answer.status, answer.body.error?.code]).toEqual([what, status, code]);
    expect(answer.body.error?.message, what).toMatch(message);
  }
});

it('still decodes images at the limits: 8192×410 (20:1) and 1×20 reach the digit check', async () => {
  for (const [width, height] of [
    [8192, 410],
    [1, 20],
  ] as const) {
    const answer = await post('/predict', asPng(await zeroPng(width, height)));
    // All black: decoded, then found blank.
    expect([width, height, answer.status, answer.body.error?.code]).toEqual([width, height, 422, 'blank_image']);
  }
});

/**
 * A progressive JPEG of `scans` AC scans that each code nothing (end-of-band runs) after one DC scan: the
 * decode costs a pass over every block per scan, whatever the pixel count (an outside attack's file:
 * 4000×4000 with ~31,700 such scans, 1 MB, kept libvips busy 90 s).
 */
function scanBombJpeg(side: number, scans: number): Uint8Array {
  const u16 = (n: number) => [n >> 8, n & 0xff];
  const segment = (marker: number, payload: number[]) => [0xff, marker, ...u16(payload.length + 2), ...payload];
  const bits = (text: string) => {
    const padded = text + '1'.repeat((8 - (text.length % 8)) % 8);
    const out: number[] = [];
    for (let i = 0; i < padded.length; i += 8) {
      const byte = Number.parseInt(padded.slice(i, i + 8), 2);
      out.push(byte, ...(byte === 0xff ? [0] : [])); // byte stuffing
    }
    return out;
  };
  const blocks = Math.ceil(side / 8) ** 2;
  const counts = [1, ...new Array(15).fill(0)];
  const head = [
    0xff,
    0xd8,
    ...segment(0xdb, [0, ...new Array(64).fill(1)]),
    ...segment(0xc2, [8, ...u16(side), ...u16(side), 1, 1, 0x11, 0]),
    ...segment(0xc4, [0x00, ...counts, 0x00]), // DC: symbol 0, code 0
    ...segment(0xc4, [0x10, ...counts, 0xe0]), // AC: end-of-band run of 2^14, code 0
    ...segment(0xda, [1, 1, 0, 0, 0, 0]),
    ...bits('0'.repeat(blocks)),
  ];
  const ac = [...segment(0xda, [1, 1, 0, 1, 63, 0]), ...bits(`0${'1'.repeat(14)}`.repeat(Math.ceil(blocks / 32767)))];
  const out = new Uint8Array(head.length + ac.length * scans + 2);
  out.set(head);
  for (let s = 0; s < scans; s++) out.set(ac, head.length + s * ac.length);
  out.set([0xff, 0xd9], out.length - 2);
  return out;
}

it('refuses a progressive JPEG of more scans than any encoder writes, before decoding, each way', async () => {
  const bomb = scanBombJpeg(4000, 5000); // 5,000 × 2.8 ms here, had it been decoded
  for (const [path, init] of ways(bomb, 'image/jpeg')) {
    const answer = await post(path, init);
    expect([path, answer.status, answer.body.error?.code]).toEqual([path, 413, 'image_too_large']);
    expect(answer.body.error?.message).toMatch(/more than 25 scans \(progressive passes\) for its 16.0 megapixels/); // from its markers
  }
  // A real progressive JPEG (libjpeg's default progression) still decodes, to the digit check.
  const progressive = await sharp({ create: { width: 600, height: 400, channels: 3, background: 'black' } })
    .jpeg({ progressive: true })
    .toBuffer();
  const answer = await post('/predict', {
    body: new Uint8Array(progressive),
    headers: { 'content-type': 'image/jpeg' },
  });
  expect([answer.status, answer.body.error?.code]).toEqual([422, 'blank_image']);
});

/** `png` with `count` zTXt chunks inserted after IHDR, each `inflated` bytes of 'A' deflated (~1000:1). */
function withTextBombs(png: Uint8Array, count: number, inflated: number): Uint8Array {
  const text = deflateSync(Buffer.alloc(inflated, 'A'), { level: 9 });
  const data = Buffer.concat([Buffer.from('Comment\0\0'), text]); // keyword, NUL, compression method 0
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('zTXt', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  const ihdrEnd = 8 + 12 + 13;
  return Buffer.concat([png.subarray(0, ihdrEnd), ...new Array(count).fill(chunk), png.subarray(ihdrEnd)]);
}

it('reads a PNG by its pixels only: compressed text chunks that would inflate to gigabytes are never inflated', async () => {
  // An outside attack's 1 MB PNG of 132 such chunks took libvips to 2.9 GB; 24 of 7.9 MB each here.
  const bomb = withTextBombs(await zeroPng(64, 64), 24, 7_900_000);
  expect(bomb.length).toBeLessThan(1024 * 1024);
  const rise = await rssRise(async () => {
    for (const [path, init] of ways(bomb, 'image/png')) {
      const answer = await post(path, init);
      expect([path, answer.status, answer.body.error?.code]).toEqual([path, 422, 'blank_image']); // decoded
    }
  });
  expect(rise).toBeLessThan(100); // MiB; before: ~190 MB of text per request
});

it('refuses arithmetic-coded, lossless and hierarchical JPEGs from their frame marker (no browser reads them; decode costs unbounded by pixels)', async () => {
  // SOI, then a SOF9 (arithmetic, extended) header for 4000×4000, 4 components: refused before any scan.
  const sof9 = [0xff, 0xc9, 0, 20, 8, 0x0f, 0xa0, 0x0f, 0xa0, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0];
  const file = new Uint8Array([0xff, 0xd8, ...sof9, 0xff, 0xd9]);
  for (const [path, init] of ways(file, 'image/jpeg')) {
    const answer = await post(path, init);
    expect([path, answer.status, answer.body.error?.code]).toEqual([path, 415, 'unsupported_media_type']);
    expect(answer.body.error?.message).toMatch(/arithmetic-coded JPEG/);
  }
});

it('one client holds at most 4 of the decode slots and queue; another still gets in', async () => {
  const photo = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: 'white' } })
    .jpeg({ progressive: true })
    .toBuffer();
  // All started in one tick: the count is taken before any decode awaits.
  const mine = Array.from({ length: 6 }, () =>
    decodeImage(new Uint8Array(photo), 'flooder').then(
      () => 'decoded',
      (e: ImageError) => e.code,
    ),
  );
  const theirs = decodeImage(new Uint8Array(photo), 'someone else').then(
    () => 'decoded',
    (e: ImageError) => e.code,
  );
  expect((await Promise.all(mine)).sort()).toEqual(['busy', 'busy', 'decoded', 'decoded', 'decoded', 'decoded']);
  expect(await theirs).toBe('decoded');
});

/** The chunk types of a PNG, in order. */
function chunkTypes(png: Uint8Array): string[] {
  const types: string[] = [];
  for (let at = 8; at + 8 <= png.length; ) {
    const length = Buffer.from(png.buffer, png.byteOffset, png.byteLength).readUInt32BE(at);
    types.push(Buffer.from(png.subarray(at + 4, at + 8)).toString('latin1'));
    at += 12 + length;
  }
  return types;
}

it('keeps only pixel chunks of a PNG even when its last chunk is cut short (which once passed the whole file through)', async () => {
  const bombed = withTextBombs(await zeroPng(28, 28), 3, 1000);
  const withoutEnd = bombed.subarray(0, bombed.length - 12); // IEND gone
  const cut = Buffer.concat([withoutEnd, Buffer.from([0, 1, 0x86, 0xa0]), Buffer.from('tEXtshort')]); // claims 100,000 bytes
  expect(chunkTypes(bombed)).toContain('zTXt');
  for (const file of [bombed, cut]) expect(chunkTypes(pixelChunksOnly(new Uint8Array(file)))).not.toContain('zTXt');
  // An IDAT cut short is kept as far as it goes (libvips decodes what is there).
  const idatCut = withoutEnd.subarray(0, withoutEnd.length - 3);
  expect(chunkTypes(pixelChunksOnly(new Uint8Array(idatCut)))).toEqual(['IHDR', 'IDAT']);
});

it('walks JPEG markers past stray bytes, as libjpeg does: one 00 before the frame marker hides nothing', async () => {
  const sof9 = [0xff, 0xc9, 0, 20, 8, 0x0f, 0xa0, 0x0f, 0xa0, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0];
  const dqt = [0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1)];
  const file = new Uint8Array([0xff, 0xd8, ...dqt, 0x00, ...sof9, 0xff, 0xd9]);
  const answer = await post('/predict', { body: file, headers: { 'content-type': 'image/jpeg' } });
  expect([answer.status, answer.body.error?.code]).toEqual([415, 'unsupported_media_type']);
  // A scan before any frame header is refused too (the scan budget needs the frame's size).
  const scanFirst = new Uint8Array([0xff, 0xd8, ...dqt, 0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0, 0xff, 0xd9]);
  const early = await post('/predict', { body: scanFirst, headers: { 'content-type': 'image/jpeg' } });
  expect([early.status, early.body.error?.code]).toEqual([415, 'unsupported_media_type']);
});
