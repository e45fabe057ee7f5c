/**
 * Models made in this browser (trained on /train, fine-tuned by "Teach it your handwriting"), kept in
 * IndexedDB so the draw page lists them beside the served ones. Saving announces the model on a
 * BroadcastChannel, so an open draw page (this one or another tab) adds it at once.
 */
import { idbStore } from './idb-store.ts';

const DB = 'mnist-local-models';
const STORE = 'models';
const CHANNEL = 'mnist-local-models';

export interface LocalModel {
  /** Shown and keyed by: one entry per kind and architecture ('trained fast-cnn'), the newest wins. */
  name: string;
  /** The deployable model.onnx (normalization folded, logits + probabilities). */
  bytes: Uint8Array;
  /** Accuracy (%) on held-out MNIST test images, as measured when it was made. */
  accuracy?: number;
  /** When it was saved (ms since the epoch): a new save is a new version, so no stale session is reused. */
  savedAt: number;
}

const transact = idbStore(DB, STORE, 'name');

export async function saveLocalModel(model: LocalModel): Promise<void> {
  await transact('readwrite', (s) => s.put(model));
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage(model);
  channel.close();
}

export const loadLocalModels = () => transact<LocalModel[]>('readonly', (s) => s.getAll());

/** Calls `added` for each model saved from now on, in this page or another tab of this origin. */
export function onLocalModel(added: (model: LocalModel) => void): void {
  new BroadcastChannel(CHANNEL).onmessage = (event: MessageEvent<LocalModel>) => added(event.data);
}
