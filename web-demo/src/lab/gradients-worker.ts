/**
 * Saliency, Grad-CAM and adversarial digits off the main thread: for each model the page asks about, the
 * gradient model built from its model.onnx (core/explain-gradients: our own backward and rule table),
 * run by onnxruntime-web on wasm. Requests run one at a time, in order.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { fgsm, pgd, smallestEpsilon } from '../../../core/explain-gradients/adversarial.ts';
import { explainImage } from '../../../core/explain-gradients/explain-image.ts';
import { GradientSession } from '../../../core/explain-gradients/session.ts';
import { softmax } from '../../../core/softmax.ts';
import { decodeModel } from '../../../onnx/codec.ts';
import { chooseThreads } from '../train/backend.ts';
import { webRuntime } from '../web-runtime.ts';
import type {
  AttackOutcome,
  AttackRequest,
  ExplainRequest,
  FromGradients,
  ModelRef,
  ToGradients,
} from './gradients-protocol.ts';

const post = (message: FromGradients) => self.postMessage(message);
const sessions = new Map<string, Promise<GradientSession>>();
const runtime = webRuntime(ort);

function sessionFor({ key, bytes }: ModelRef): Promise<GradientSession> {
  let session = sessions.get(key);
  if (!session) {
    if (!bytes) throw new Error(`internal: no model.onnx for ${key}`);
    ort.env.wasm.numThreads = chooseThreads(0).threads;
    session = GradientSession.create(runtime, decodeModel(bytes), { device: 'wasm' });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

async function explain(r: ExplainRequest): Promise<void> {
  const started = performance.now();
  const session = await sessionFor(r.model);
  const explained = await explainImage(session, r.pixels, r.classes);
  const classes = explained.classes.map((c) => ({
    class: c.class,
    saliency: c.saliency,
    ...(c.cam && { cam: c.cam.map }),
  }));
  const logits = explained.logits;
  const ms = performance.now() - started;
  post({ type: 'explained', id: r.id, key: r.model.key, logits: Array.from(logits), classes, ms });
}

async function attack(r: AttackRequest): Promise<void> {
  const started = performance.now();
  const session = await sessionFor(r.model);
  const goal = { label: r.label, ...(r.target === undefined ? {} : { target: r.target }) };
  const result =
    r.mode === 'smallest'
      ? await smallestEpsilon(session, r.pixels, goal, r.method, { maxEpsilon: r.epsilon })
      : await (r.method === 'fgsm' ? fgsm : pgd)(session, r.pixels, goal, r.epsilon);
  const outcome: AttackOutcome | undefined = result && {
    method: result.method,
    epsilon: result.epsilon,
    ...('failedAt' in result ? { failedAt: result.failedAt as number } : {}),
    image: result.image,
    prediction: result.prediction,
    probabilities: softmax(result.logits),
    flipped: result.flipped,
    gradientRuns: result.gradientRuns,
  };
  post({
    type: 'attacked',
    id: r.id,
    key: r.model.key,
    ...(outcome ? { outcome } : {}),
    ms: performance.now() - started,
  });
}

let queue = Promise.resolve();
// ORT's wasm threads load this same script as 'em-pthread…' workers; only the page's worker listens.
if (self.name === 'gradients') {
  self.addEventListener('message', (event: MessageEvent<ToGradients>) => {
    const r = event.data;
    queue = queue
      .then(() => (r.type === 'explain' ? explain(r) : attack(r)))
      .catch((error: unknown) =>
        post({ type: 'error', id: r.id, key: r.model.key, message: (error as Error).message ?? String(error) }),
      );
  });
}
