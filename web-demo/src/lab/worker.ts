/**
 * The failure lab's worker: runs a model (onnxruntime-web, wasm) on MNIST's test images in batches off the
 * main thread, so the page stays responsive, and returns every answer plus each misread image with its
 * probabilities.
 */
import * as ort from 'onnxruntime-web/webgpu';
import {
  IMAGE_PIXELS,
  IMAGE_SHAPE,
  LOGITS_NAME,
  MNIST_MEAN,
  MNIST_STD,
  NUM_CLASSES,
  normalizationFolded,
} from '../../../core/contract.ts';
import type { Dataset } from '../../../core/data/dataset.ts';
import { argmax, softmax } from '../../../core/softmax.ts';
import { decodeModel } from '../../../onnx/codec.ts';
import { describeModel } from '../../../onnx/describe.ts';
import { chooseThreads } from '../train/backend.ts';
import { fetchMnist } from '../train/mnist.ts';
import type { EvaluateRequest, FromLab, Misread } from './protocol.ts';

const BATCH = 500;
const post = (message: FromLab, transfer: Transferable[] = []) => self.postMessage(message, { transfer });
const testSets = new Map<number, Promise<Dataset>>();

function testSet(count: number): Promise<Dataset> {
  let data = testSets.get(count);
  if (!data) {
    data = fetchMnist('test', count);
    testSets.set(count, data);
    data.catch(() => testSets.delete(count));
  }
  return data;
}

async function evaluate({ id, bytes, count }: EvaluateRequest): Promise<void> {
  ort.env.wasm.numThreads = chooseThreads(0).threads;
  const started = performance.now();
  // A tutorial model exported by torch takes normalized pixels; ours have the normalization folded in.
  const folded = normalizationFolded(describeModel(decodeModel(bytes)).metadata);
  const [data, session] = await Promise.all([
    testSet(count),
    ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] }),
  ]);
  try {
    const input = session.inputNames[0] as string;
    const output = session.outputNames.includes(LOGITS_NAME) ? LOGITS_NAME : (session.outputNames[0] as string);
    const predictions = new Uint8Array(data.count);
    const misread: Misread[] = [];
    for (let start = 0; start < data.count; start += BATCH) {
      const n = Math.min(BATCH, data.count - start);
      const pixels = data.images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS);
      const x = Float32Array.from(pixels, (v) => (folded ? v / 255 : (v / 255 - MNIST_MEAN) / MNIST_STD));
      const out = await session.run({ [input]: new ort.Tensor('float32', x, [n, ...IMAGE_SHAPE]) });
      const logits = out[output]?.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES);
        const index = start + i;
        const predicted = argmax(row);
        const label = data.labels[index] as number;
        predictions[index] = predicted;
        if (predicted !== label)
          misread.push({
            index,
            label,
            predicted,
            probabilities: softmax(row),
            pixels: data.images.slice(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS),
          });
      }
      post({ type: 'progress', id, done: start + n, total: data.count });
    }
    const labels = data.labels.slice();
    const seconds = (performance.now() - started) / 1000;
    post({ type: 'result', id, predictions, labels, misread, seconds }, [predictions.buffer, labels.buffer]);
  } finally {
    await session.release();
  }
}

// ORT's wasm threads load this same script as 'em-pthread…' workers; only the page's worker listens.
if (self.name === 'lab') {
  self.addEventListener('message', (event: MessageEvent<EvaluateRequest>) => {
    evaluate(event.data).catch((error: unknown) =>
      post({ type: 'error', id: event.data.id, message: (error as Error).message ?? String(error) }),
    );
  });
}
