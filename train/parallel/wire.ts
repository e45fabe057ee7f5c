/** Tensors as they cross between threads: typed arrays and dims (ORT tensors don't survive structured clone). */
import * as ort from 'onnxruntime-node';

export interface WireTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

export type WireFeeds = Record<string, WireTensor>;

export function toOrt(t: WireTensor): ort.Tensor {
  return t.type === 'float32'
    ? new ort.Tensor('float32', t.data as Float32Array, t.dims)
    : new ort.Tensor('int64', t.data as BigInt64Array, t.dims);
}

export function fromOrt(t: ort.Tensor): WireTensor {
  if (t.type !== 'float32' && t.type !== 'int64') throw new Error(`internal: cannot send a ${t.type} tensor`);
  return { type: t.type, data: t.data as Float32Array | BigInt64Array, dims: t.dims };
}

/** Messages from a session worker. */
export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'outputs'; outputs: WireFeeds }
  | { kind: 'error'; message: string };
