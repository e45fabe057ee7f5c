/**
 * The embedding view's worker: the selected model's penultimate features (core/deploy/penultimate.ts) for
 * MNIST test images, run by onnxruntime-web, projected to 2-D by UMAP (umap-js, seeded); it keeps the fitted
 * UMAP so the user's drawing can be placed among them by UMAP's own transform.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { UMAP } from 'umap-js';
import {
  IMAGE_PIXELS,
  IMAGE_SHAPE,
  LOGITS_NAME,
  MNIST_MEAN,
  MNIST_STD,
  normalizationFolded,
} from '../../../core/contract.ts';
import { penultimateModel } from '../../../core/deploy/penultimate.ts';
import { Rng } from '../../../core/random.ts';
import { argmax } from '../../../core/softmax.ts';
import { decodeModel, encodeModel } from '../../../onnx/codec.ts';
import { describeModel } from '../../../onnx/describe.ts';
import { chooseThreads } from '../train/backend.ts';
import { fetchMnist } from '../train/mnist.ts';
import type { EmbedRequest, FromEmbedding, PlaceRequest, ToEmbedding } from './embedding-protocol.ts';

const BATCH = 500;
/** UMAP's neighbourhood and spread: its defaults (15, 0.1) read MNIST's classes well. */
const UMAP_SETTINGS = { nComponents: 2, nNeighbors: 15, minDist: 0.1 };
const post = (message: FromEmbedding, transfer: Transferable[] = []) => self.postMessage(message, { transfer });

/** The last fit, for placing drawings. */
let fitted:
  | { umap: UMAP; session: ort.InferenceSession; input: string; features: string; logits: string; folded: boolean }
  | undefined;

async function features(pixels: Float32Array, n: number): Promise<{ features: Float32Array; logits: Float32Array }> {
  if (!fitted) throw new Error('internal: no model');
  const { session, input, folded } = fitted;
  const x = folded ? pixels : pixels.map((v) => (v - MNIST_MEAN) / MNIST_STD);
  const out = await session.run({ [input]: new ort.Tensor('float32', x, [n, ...IMAGE_SHAPE]) });
  return { features: out[fitted.features]?.data as Float32Array, logits: out[fitted.logits]?.data as Float32Array };
}

async function embed({ id, bytes, count }: EmbedRequest): Promise<void> {
  ort.env.wasm.numThreads = chooseThreads(0).threads;
  const source = decodeModel(bytes);
  const variant = penultimateModel(source);
  const [data, session] = await Promise.all([
    fetchMnist('test', count),
    ort.InferenceSession.create(encodeModel(variant.model), { executionProviders: ['wasm'] }),
  ]);
  await fitted?.session.release();
  const logits = session.outputNames.includes(LOGITS_NAME) ? LOGITS_NAME : (session.outputNames[0] as string);
  const folded = normalizationFolded(describeModel(source).metadata);
  fitted = {
    umap: new UMAP(),
    session,
    input: session.inputNames[0] as string,
    features: variant.features,
    logits,
    folded,
  };

  let started = performance.now();
  const rows: number[][] = [];
  for (let start = 0; start < data.count; start += BATCH) {
    const n = Math.min(BATCH, data.count - start);
    const pixels = Float32Array.from(
      data.images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS),
      (v) => v / 255,
    );
    const f = (await features(pixels, n)).features;
    const dims = f.length / n;
    for (let i = 0; i < n; i++) rows.push(Array.from(f.subarray(i * dims, (i + 1) * dims)));
    post({ type: 'progress', id, stage: 'features', done: start + n, total: data.count });
  }
  const featureSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  const rng = new Rng(1);
  const umap = new UMAP({ ...UMAP_SETTINGS, random: () => rng.next() });
  fitted.umap = umap;
  const epochs = umap.initializeFit(rows);
  for (let e = 0; e < epochs; e++) {
    umap.step();
    if (e % 25 === 0) post({ type: 'progress', id, stage: 'umap', done: e, total: epochs });
  }
  const points = Float32Array.from(umap.getEmbedding().flat());
  const fitSeconds = (performance.now() - started) / 1000;
  const labels = data.labels.slice();
  const pixels = data.images.slice(0, data.count * IMAGE_PIXELS);
  post(
    {
      type: 'embedded',
      id,
      points,
      labels,
      pixels,
      dims: rows[0]?.length ?? 0,
      features: variant.features,
      featureSeconds,
      fitSeconds,
    },
    [points.buffer, labels.buffer, pixels.buffer],
  );
}

async function place({ id, pixels }: PlaceRequest): Promise<void> {
  if (!fitted) throw new Error('map the test digits first');
  const { features: f, logits } = await features(pixels, 1);
  const [point] = fitted.umap.transform([Array.from(f)]);
  post({ type: 'placed', id, point: [point?.[0] ?? 0, point?.[1] ?? 0], prediction: argmax(logits) });
}

let queue = Promise.resolve();
// ORT's wasm threads load this same script as 'em-pthread…' workers; only the page's worker listens.
if (self.name === 'embedding') {
  self.addEventListener('message', (event: MessageEvent<ToEmbedding>) => {
    const r = event.data;
    queue = queue
      .then(() => (r.type === 'embed' ? embed(r) : place(r)))
      .catch((error: unknown) => post({ type: 'error', id: r.id, message: (error as Error).message ?? String(error) }));
  });
}
