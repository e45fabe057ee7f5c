/** Hostile request bodies: crafted image headers, decompression bombs, deep nesting, prototype keys. */
import { once } from 'node:events';
import { crc32, createDeflate, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

function ihdr(width: number, height: number, depth = 8, colour = 0, interlace = 0): Buffer {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width, 0);
  b.writeUInt32BE(height, 4);
  b[8] = depth;
  b[9] = colour;
  b[12] = interlace;
  return chunk('IHDR', b);
}

/** A PNG from raw chunk parts (IHDR(s), IDAT payload, IEND). */
export function png(parts: { headers: Buffer[]; idat: Buffer }): Uint8Array {
  return new Uint8Array(
    Buffer.concat([SIGNATURE, ...parts.headers, chunk('IDAT', parts.idat), chunk('IEND', Buffer.alloc(0))]),
  );
}

/** Samples per pixel of each PNG colour type (0 grey, 2 RGB, 4 grey + alpha, 6 RGBA). */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * A valid PNG of `width`×`height` black pixels, every row present: the rows are deflated from one reused
 * buffer of zeros, so a 16-megapixel 16-bit image costs the test its ~125 KB of compressed bytes, not 128 MB.
 */
export async function zeroPng(width: number, height: number, depth = 8, colour = 0): Promise<Uint8Array> {
  const rowBytes = 1 + Math.ceil((width * (SAMPLES[colour] ?? 1) * depth) / 8);
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (part: Buffer) => parts.push(part));
  const ended = once(deflate, 'end');
  const zeros = Buffer.alloc(1 << 20);
  for (let left = rowBytes * height; left > 0; left -= zeros.length)
    if (!deflate.write(zeros.subarray(0, Math.min(left, zeros.length)))) await once(deflate, 'drain');
  deflate.end();
  await ended;
  return png({ headers: [ihdr(width, height, depth, colour)], idat: Buffer.concat(parts) });
}

/** Every PNG trick we know: lying headers, a second IHDR, inflate bombs, bad CRCs, absurd sizes. */
export function hostilePngs(): [string, Uint8Array][] {
  const zeros = (n: number) => deflateSync(Buffer.alloc(n), { level: 9 });
  const small = ihdr(10, 10);
  const badCrc = Buffer.from(png({ headers: [small], idat: zeros(110) }));
  badCrc[29] = (badCrc[29] as number) ^ 0xff;
  return [
    ['second IHDR claims 8000x8000x16', png({ headers: [small, ihdr(8000, 8000, 16, 6)], idat: zeros(1000) })],
    ['header claims 100000x100000', png({ headers: [ihdr(100_000, 100_000)], idat: zeros(1000) })],
    ['header claims 0x0', png({ headers: [ihdr(0, 0)], idat: zeros(10) })],
    [
      'interlaced inflate bomb (50 MB of zeros)',
      png({ headers: [ihdr(2000, 2000, 8, 2, 1)], idat: zeros(50_000_000) }),
    ],
    ['IDAT with garbage', png({ headers: [small], idat: Buffer.from('not zlib at all') })],
    ['bad CRC', new Uint8Array(badCrc)],
    ['16-bit 3000x3000 of zeros (blank)', png({ headers: [ihdr(3000, 3000, 16, 0)], idat: zeros(3000 * 6001) })],
    ['palette without PLTE', png({ headers: [ihdr(10, 10, 8, 3)], idat: zeros(110) })],
    ['bit depth 7', png({ headers: [ihdr(10, 10, 7, 0)], idat: zeros(110) })],
    ['signature only', new Uint8Array(SIGNATURE)],
  ];
}

/** A JPEG start (SOI + SOF0) claiming `width`×`height`, then nothing. */
export function jpegHeader(width: number, height: number): Uint8Array {
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0, 0, 0, 0, 0x01, 0x01, 0x11, 0x00]);
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return new Uint8Array(Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])]));
}

/** A GIF whose logical screen claims 65535×65535. */
export function gifHeader(): Uint8Array {
  const b = Buffer.from('GIF89a\xff\xff\xff\xff\x00\x00\x00', 'latin1');
  return new Uint8Array(Buffer.concat([b, Buffer.from([0x3b])]));
}

/** `[[[…]]]` nested `depth` deep, as JSON text (built without recursion). */
export const deepArray = (depth: number, inner = '0') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
export const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`;

/** Keys every JS object inherits: a lookup with `in` or `obj[key]` finds them without own properties. */
export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupGetter__',
];
