/**
 * Check that an execution provider is really there before serving: a one-node model on that device.
 * `serve --device cuda` on a machine without CUDA then exits with the reason instead of serving no model.
 */
import { GraphBuilder } from '../export/onnx/builder.ts';
import { encodeModel } from '../export/onnx/codec.ts';
import { createSession, type Device, type Provider } from '../runtime/execution.ts';

export async function probeDevice(device: Device, onNotice?: (message: string) => void): Promise<Provider> {
  const g = new GraphBuilder('probe');
  g.output(g.op('Identity', [g.input('x', 'FLOAT', [1])]), 'FLOAT', [1], 'y');
  const { session, provider } = await createSession(encodeModel(g.toModel()), { device, onNotice });
  await session.release();
  return provider;
}
