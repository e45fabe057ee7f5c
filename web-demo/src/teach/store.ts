/** The fine-tuned model kept in this browser (IndexedDB), so a reload does not lose it. */
const DB = 'mnist-teach';
const STORE = 'models';
const KEY = 'latest';

export interface SavedModel {
  bytes: Uint8Array;
  model: string;
  samples: number;
  savedAt: string;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = work(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

export const saveModel = (saved: SavedModel) => transact('readwrite', (s) => s.put(saved, KEY)).then(() => undefined);
export const loadSavedModel = () => transact<SavedModel | undefined>('readonly', (s) => s.get(KEY));
