/**
 * A worker thread that owns one ORT session (the model bytes and session settings come in workerData)
 * and runs it on the feeds each message brings. One session per thread: two sessions stepping
 * concurrently on one thread's event loop serialize, workers run in parallel.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { createSession, type SessionSettings } from '../../runtime/execution.ts';
import { fromOrt, toOrt, type WireFeeds, type WorkerReply } from './wire.ts';

const { model, settings } = workerData as { model: Uint8Array; settings: SessionSettings };
const port = parentPort;
if (!port) throw new Error('session-worker.ts runs as a worker thread');
const reply = (message: WorkerReply) => port.postMessage(message);

let session: ort.InferenceSession | undefined;
try {
  session = (await createSession(model, { ...settings, onNotice: undefined })).session;
  reply({ kind: 'ready' });
} catch (error) {
  reply({ kind: 'error', message: (error as Error).message });
}

port.on('message', async (feeds: WireFeeds | null) => {
  if (feeds === null) {
    await session?.release();
    port.close();
    return;
  }
  try {
    if (!session) throw new Error('the worker has no session');
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, toOrt(t)]));
    const out = await session.run(ortFeeds);
    reply({ kind: 'outputs', outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, fromOrt(t)])) });
  } catch (error) {
    reply({ kind: 'error', message: (error as Error).message });
  }
});
