/**
 * Check that an execution provider is really there before serving: a one-node model on that device,
 * created in a child process — Dawn, Vulkan and CUDA print several lines of native noise to stderr when
 * they fail, and only a separate process can keep those off the user's terminal. `serve --device cuda` on
 * a machine without CUDA then exits with our one-line reason instead of serving no model, and `train`
 * and `start` fail before loading data or training.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { NodeDevice as Device, NodeProvider as Provider } from '../core/ort-runtime.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
import { DeviceUnavailableError, sessionOptions, unavailableReason } from './execution.ts';

const ORT = pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;

const CHILD = `
const [ortUrl, model, options] = process.argv.slice(1);
const ort = await import(ortUrl);
try {
  const s = await (ort.default ?? ort).InferenceSession.create(Buffer.from(model, 'base64'), JSON.parse(options));
  await s.release();
  process.stdout.write('ok');
} catch (error) {
  process.stdout.write(String(error?.message ?? error).split('\\n')[0].slice(0, 300));
  process.exitCode = 1;
}`;

function probeModel(): string {
  const g = new GraphBuilder('probe');
  g.output(g.op('Identity', [g.input('x', 'FLOAT', [1])]), 'FLOAT', [1], 'y');
  return Buffer.from(encodeModel(g.toModel())).toString('base64');
}

/** Whether `provider` can create a session here; the error line when it can't. */
function tryProvider(provider: Exclude<Provider, 'cpu'>): Promise<string | undefined> {
  const args = ['--input-type=module', '-e', CHILD, ORT, probeModel(), JSON.stringify(sessionOptions(provider))];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (error, stdout) => {
      resolve(error ? stdout.trim() || error.message.split('\n')[0] : undefined);
    });
  });
}

/** The provider `device` resolves to; DeviceUnavailableError (one line, our words) when it isn't there. */
export async function probeDevice(device: Device, onNotice?: (message: string) => void): Promise<Provider> {
  if (device === 'cpu') return 'cpu';
  const provider = device === 'auto' ? 'cuda' : device;
  const failure = await tryProvider(provider);
  if (failure === undefined) return provider;
  const error = new DeviceUnavailableError(unavailableReason(provider, failure));
  if (device !== 'auto') throw error;
  onNotice?.(`device auto: using the CPU (${error.message.split(' [')[0]})`);
  return 'cpu';
}
