/**
 * ORT's NCHWc block size on this CPU (16 with AVX-512, 8 with AVX2), for training graphs whose forward
 * Convs run as NCHWc convolutions (core/training/nchwc-convs.ts). Probed once: ReorderInput pads 4
 * channels up to one block. Undefined where this build of ORT has no NCHWc kernels, or with
 * MNIST_ONNX_CNN_NCHWC=0 (the graphs then keep plain Convs, with the same results up to float rounding).
 */
import * as ort from 'onnxruntime-node';
import { NCHWC_DOMAIN } from '../core/training/nchwc-convs.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';

let probed: Promise<number | undefined> | undefined;

export function nchwcBlockSize(): Promise<number | undefined> {
  probed ??= probe();
  return probed;
}

async function probe(): Promise<number | undefined> {
  if (process.env.MNIST_ONNX_CNN_NCHWC === '0') return undefined;
  const g = new GraphBuilder('nchwc_probe');
  const x = g.input('x', 'FLOAT', [1, 4, 1, 1]);
  g.output(g.op('ReorderInput', [x], {}, { domain: NCHWC_DOMAIN }), 'FLOAT', [1, 'blocked', 1, 1], 'y');
  g.importDomain(NCHWC_DOMAIN, 1);
  try {
    const session = await ort.InferenceSession.create(encodeModel(g.toModel()), { intraOpNumThreads: 1 });
    try {
      const { y } = await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
      const block = y?.dims[1];
      return typeof block === 'number' && block >= 4 ? block : undefined;
    } finally {
      await session.release();
    }
  } catch {
    return undefined;
  }
}
