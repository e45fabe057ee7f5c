/** MNIST from the server's /api/mnist route (uint8 labels then pixels), as the Dataset the Trainer's batches read. */
import { IMAGE_PIXELS } from '../../../core/contract.ts';
import type { Dataset } from '../../../core/data/dataset.ts';

export async function fetchMnist(split: 'train' | 'test', count: number): Promise<Dataset> {
  const response = await fetch(`/api/mnist/${split}?count=${count}`);
  if (!response.ok) throw new Error(`MNIST ${split}: HTTP ${response.status}`);
  const body = new Uint8Array(await response.arrayBuffer());
  if (body.length !== count * (1 + IMAGE_PIXELS))
    throw new Error(`MNIST ${split}: expected ${count} examples, got ${body.length} bytes`);
  return { labels: body.subarray(0, count), images: body.subarray(count), count };
}
