/**
 * The training worker: the CLI's Trainer, graph builder, gradient rules and optimizers (core/training/trainer-core.ts,
 * bundled by Vite) on onnxruntime-web, off the page's main thread. Receives a TrainRequest, reports every
 * batch and epoch, and ends with a validated deployable model.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { IMAGE_SHAPE, PROBABILITIES_NAME } from '../../../core/contract.ts';
import { ZOO } from '../../../core/model/zoo/index.ts';
import type { InferenceSession } from '../../../core/ort-runtime.ts';
import { Rng } from '../../../core/random.ts';
import { BatchStream, normalizedSplit } from '../../../core/training/batches.ts';
import { optimizerFor } from '../../../core/training/optim/from-config.ts';
import { describeRecipe } from '../../../core/training/run-config.ts';
import { runEpoch } from '../../../core/training/run-epoch.ts';
import { Trainer } from '../../../core/training/trainer-core.ts';
import { webRuntime } from '../web-runtime.ts';
import { chooseThreads, chooseTrainingBackend } from './backend.ts';
import { deployable } from './deploy.ts';
import { fetchMnist } from './mnist.ts';
import type { FromWorker, ToWorker, TrainRequest } from './protocol.ts';
import { recipeConfig } from './recipes.ts';

const post = (message: FromWorker, transfer: Transferable[] = []) => self.postMessage(message, { transfer });
const runtime = webRuntime(ort);
let stopRequested = false;
let finalSession: InferenceSession | undefined;

// Let queued messages (Stop, predictions) in between steps: ORT's promises resolve as microtasks.
const channel = new MessageChannel();
const yieldToEvents = () =>
  new Promise<void>((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });

async function train(request: TrainRequest): Promise<void> {
  stopRequested = false;
  await finalSession?.release();
  finalSession = undefined;
  const threads = chooseThreads(request.threads);
  ort.env.wasm.numThreads = threads.threads; // read once, when the first session starts the wasm module
  let choice = await chooseTrainingBackend(request.backend);
  const config = recipeConfig(request);
  post({ type: 'status', text: 'Loading MNIST…' });
  const [trainSet, testSet] = await Promise.all([
    fetchMnist('train', request.trainCount),
    fetchMnist('test', request.testCount),
  ]);
  const create = (device: 'wasm' | 'webgpu') =>
    Trainer.create(ZOO[request.model].build(), {
      runtime,
      device,
      optimizer: optimizerFor(config),
      labelSmoothing: config.labelSmoothing,
      seed: request.seed,
    });
  post({ type: 'status', text: 'Building the training graph…' });
  let trainer: Trainer;
  try {
    trainer = await create(choice.backend);
  } catch (error) {
    if (choice.backend === 'wasm') throw error;
    choice = { backend: 'wasm', reason: `WebGPU failed (${(error as Error).message.slice(0, 120)})` };
    trainer = await create('wasm');
  }
  post({
    type: 'backend',
    backend: choice.backend,
    threads: threads.threads,
    note: choice.backend === 'wasm' ? `wasm, SIMD, ${threads.reason}; ${choice.reason}` : `WebGPU: ${choice.reason}`,
  });

  const stream = new BatchStream(trainSet, request.batchSize, new Rng(request.seed));
  const test = normalizedSplit(testSet);
  const totalSteps = request.epochs * stream.batchesPerEpoch;
  let [trainedImages, trainingSeconds, epochsDone] = [0, 0, 0];
  try {
    for (let epoch = 1; epoch <= request.epochs && !stopRequested; epoch++) {
      const figures = await runEpoch(trainer, stream, epoch, {
        schedule: config.schedule,
        lr: request.lr,
        totalSteps,
        onStep: async (progress) => {
          post({
            type: 'batch',
            epoch,
            batch: progress.batch,
            batches: progress.batches,
            loss: progress.batchLoss,
            accuracy: progress.batchAccuracy,
            imagesPerSecond: progress.imagesPerSecond,
          });
          await yieldToEvents();
        },
        shouldStop: () => stopRequested,
      });
      const { seconds } = figures;
      trainedImages += Math.round(figures.imagesPerSecond * seconds);
      trainingSeconds += seconds;
      epochsDone = epoch;
      post({ type: 'status', text: `Epoch ${epoch}: testing on ${test.labels.length} held-out images…` });
      const evaluation = await trainer.evaluate(test.images, test.labels, 500);
      post({
        type: 'epoch',
        epoch,
        trainLoss: figures.trainLoss,
        trainAccuracy: figures.trainAccuracy,
        testLoss: evaluation.loss,
        testAccuracy: evaluation.accuracy,
        seconds,
        imagesPerSecond: figures.imagesPerSecond,
      });
    }
    post({ type: 'status', text: 'Building and validating the deployable model…' });
    const deployed = await deployable(
      runtime,
      request.model,
      trainer.weights(),
      {
        training_recipe: `${describeRecipe({ ...config, lr: request.lr, batchSize: request.batchSize, seed: request.seed })}, ${request.trainCount} images, trained in the browser (${choice.backend})`,
        epochs: String(epochsDone),
      },
      testSet,
    );
    finalSession = (await runtime.createSession(deployed.bytes.slice(), { device: 'wasm' })).session;
    post(
      {
        type: 'done',
        model: deployed.bytes,
        testAccuracy: deployed.accuracy,
        testCount: testSet.count,
        maxLogitDifference: deployed.maxLogitDifference,
        disagreements: deployed.disagreements,
        stopped: stopRequested,
        steps: trainer.steps,
        imagesPerSecond: trainedImages / Math.max(trainingSeconds, 1e-9),
      },
      [deployed.bytes.buffer],
    );
  } finally {
    await trainer.release();
  }
}

async function predict(pixels: Float32Array): Promise<void> {
  if (!finalSession) return;
  const out = await finalSession.run({ input: new ort.Tensor('float32', pixels, [1, ...IMAGE_SHAPE]) });
  post({ type: 'prediction', probabilities: Array.from(out[PROBABILITIES_NAME]?.data as Float32Array) });
}

/** The page starts this worker under this name; ORT's wasm threads start this same bundle as 'em-pthread…'. */
const WORKER_NAME = 'trainer';

// Only the page's worker listens: in ORT's thread workers, Emscripten's own message handler must run alone.
if (self.name === WORKER_NAME) {
  self.addEventListener('message', (event: MessageEvent<ToWorker>) => {
    const message = event.data;
    const fail = (error: unknown) => post({ type: 'error', message: (error as Error).message ?? String(error) });
    if (message.type === 'stop') stopRequested = true;
    else if (message.type === 'train') train(message.request).catch(fail);
    else if (message.type === 'predict') predict(message.pixels).catch(fail);
  });
}
