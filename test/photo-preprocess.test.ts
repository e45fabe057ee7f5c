/**
 * Photos of handwriting read right: MNIST test digits rendered as photos (grey or tinted paper, uneven
 * light, shadows, noise, blur, JPEG, 240–1000 px, anywhere in the frame, thin and thick pens, chalk on a
 * board, the desk past the paper's edge — testkit/photo-digits.ts), preprocessed by the shared
 * module and read by the committed fixture CNN (test/fixtures/models/cnn) served by the real server. A model is judged on the digits it
 * reads right when clean: the preprocessing must keep ≥ 95% of those right as photos. The server's own
 * /predict path on the PNG must agree with the module.
 */
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_PIXELS } from '../core/contract.ts';
import { BlankImageError, preprocessRgba } from '../core/digits/digit.ts';
import { Rng } from '../core/random.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { type DigitPhoto, PHOTO_CONDITIONS, type PhotoCondition, photoOf } from '../testkit/photo-digits.ts';
import { makeModelRepository } from './helpers/model-repo.ts';

/** Photos per condition: one MNIST test digit each, digits 0… in order, conditions in turn. */
const PER_CONDITION = 16;

let server: RunningServer;
let repo: Awaited<ReturnType<typeof makeModelRepository>>;

beforeAll(async () => {
  repo = await makeModelRepository();
  server = await startServer({ models: repo.root, port: 0, maxBodyBytes: 16 * 2 ** 20 });
}, 120_000);
afterAll(async () => {
  await server?.close();
});

const digit = (i: number) => repo.test.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);

/** The served model's readings of 28×28 inputs (raw float32 batch through /predict). */
async function read(inputs: Float32Array[]): Promise<number[]> {
  const body = new Float32Array(inputs.length * IMAGE_PIXELS);
  inputs.forEach((x, k) => {
    body.set(x, k * IMAGE_PIXELS);
  });
  const r = await fetch(`${server.url}/predict/cnn`, {
    method: 'POST',
    body: new Uint8Array(body.buffer),
    headers: { 'content-type': 'application/octet-stream' },
  });
  const answers = (await r.json()) as { prediction: number }[] | { prediction: number };
  return (Array.isArray(answers) ? answers : [answers]).map((a) => a.prediction);
}

const png = (p: DigitPhoto) => {
  const image = new PNG({ width: p.width, height: p.height });
  image.data.set(p.rgba);
  return new Uint8Array(PNG.sync.write(image));
};

describe('photos of handwritten digits', () => {
  it('reads ≥ 95% of the digits the model reads clean, in every condition together; the server agrees', async () => {
    const count = PER_CONDITION * PHOTO_CONDITIONS.length;
    const indices = Array.from({ length: count }, (_, i) => i);
    const clean = await read(indices.map((i) => Float32Array.from(digit(i), (v) => v / 255)));
    const known = indices.filter((i) => clean[i] === repo.test.labels[i]);
    expect(known.length / count).toBeGreaterThan(0.9); // a good model: it reads the clean originals

    const condition = (i: number): PhotoCondition => PHOTO_CONDITIONS[i % PHOTO_CONDITIONS.length] as PhotoCondition;
    const photos = known.map((i) => photoOf(digit(i), condition(i), 1000 + i));
    const inputs = photos.map((p) => preprocessRgba(p.rgba, p.width, p.height));
    const readings = await read(inputs);
    const right = known.map((i, k) => readings[k] === repo.test.labels[i]);

    const table = Object.fromEntries(
      PHOTO_CONDITIONS.map((c) => {
        const here = known.map((i, k) => [condition(i), right[k]] as const).filter(([d]) => d === c);
        return [c, `${here.filter(([, r]) => r).length}/${here.length}`];
      }),
    );
    console.log('read right, per condition:', table);
    const accuracy = right.filter(Boolean).length / right.length;
    console.log(`photos read right: ${(100 * accuracy).toFixed(1)}% of ${right.length}`);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);

    // The server's /predict on the picture itself (PNG body) reads what the module's input reads.
    for (const k of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]) {
      const p = photos[k] as DigitPhoto;
      const r = await fetch(`${server.url}/predict/cnn`, {
        method: 'POST',
        body: png(p),
        headers: { 'content-type': 'image/png' },
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { prediction: number }).prediction).toBe(readings[k]);
    }
  }, 600_000);
});

describe('odd pictures', () => {
  it('gives 784 values in [0, 1] or refuses as blank, for any shape and content', () => {
    const rng = new Rng(5);
    const shapes = [
      [1, 1],
      [1, 500],
      [500, 1],
      [2, 2],
      [3, 3],
      [7, 5],
      [28, 28],
      [64, 3],
      [300, 200],
    ] as const;
    for (const [w, h] of shapes)
      for (const kind of ['noise', 'white', 'black', 'half'] as const) {
        const rgba = new Uint8Array(w * h * 4);
        for (let i = 0; i < rgba.length; i++) {
          const opaqueBlack = i % 4 === 3 ? 255 : 0;
          rgba[i] =
            kind === 'noise'
              ? rng.int(256)
              : kind === 'white'
                ? 255
                : kind === 'black'
                  ? opaqueBlack
                  : i < rgba.length / 2
                    ? 255
                    : opaqueBlack;
        }
        try {
          const out = preprocessRgba(rgba, w, h);
          expect(out).toHaveLength(IMAGE_PIXELS);
          expect(out.every((v) => v >= 0 && v <= 1)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(BlankImageError);
        }
      }
  });
});
