/** The fine-tuned model kept in this browser (IndexedDB), so a reload does not lose it. */
import { idbStore } from '../idb-store.ts';

const DB = 'mnist-teach';
const STORE = 'models';
const KEY = 'latest';

export interface SavedModel {
  bytes: Uint8Array;
  model: string;
  samples: number;
  savedAt: string;
}

const transact = idbStore(DB, STORE);

export const saveModel = (saved: SavedModel) => transact('readwrite', (s) => s.put(saved, KEY)).then(() => undefined);
export const loadSavedModel = () => transact<SavedModel | undefined>('readonly', (s) => s.get(KEY));
