/** The fine-tuning worker for "Teach it your handwriting": fineTune() on onnxruntime-web, off the main thread. */
import * as ort from 'onnxruntime-web/webgpu';
import { chooseThreads } from '../train/backend.ts';
import { fetchMnist } from '../train/mnist.ts';
import { webRuntime } from '../web-runtime.ts';
import { FINE_TUNE_DEFAULTS, type FineTuned, fineTune, type Sample } from './finetune.ts';

export type TeachRequest = { type: 'finetune'; served: Uint8Array; samples: Sample[]; mnistTest: number };
export type TeachReply =
  | { type: 'status'; text: string }
  | ({ type: 'done' } & FineTuned)
  | { type: 'error'; message: string };

const post = (message: TeachReply, transfer: Transferable[] = []) => self.postMessage(message, { transfer });
const runtime = webRuntime(ort);

async function run(request: TeachRequest): Promise<void> {
  ort.env.wasm.numThreads = chooseThreads(0).threads;
  post({ type: 'status', text: 'Loading MNIST…' });
  const [train, test] = await Promise.all([fetchMnist('train', 5000), fetchMnist('test', request.mnistTest)]);
  post({ type: 'status', text: 'Reading the served model…' });
  const result = await fineTune(
    runtime,
    request.served,
    request.samples,
    { train, test },
    FINE_TUNE_DEFAULTS,
    (step, loss) =>
      post({ type: 'status', text: `Fine-tuning: step ${step}/${FINE_TUNE_DEFAULTS.steps}, loss ${loss.toFixed(3)}` }),
  );
  post({ type: 'done', ...result }, [result.bytes.buffer]);
}

// ORT's wasm threads load this same script as 'em-pthread…' workers; only the page's worker listens.
if (self.name === 'teach') {
  self.addEventListener('message', (event: MessageEvent<TeachRequest>) => {
    run(event.data).catch((error: unknown) =>
      post({ type: 'error', message: (error as Error).message ?? String(error) }),
    );
  });
}
