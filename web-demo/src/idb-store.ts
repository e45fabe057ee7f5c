/** One IndexedDB object store, opened per transaction (the page keeps no connection open between saves). */

export type Transact = <T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T>) => Promise<T>;

/** Transactions on store `store` of database `db` (created at version 1; `keyPath` or out-of-line keys). */
export function idbStore(db: string, store: string, keyPath?: string): Transact {
  const open = () =>
    new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(db, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(store, keyPath ? { keyPath } : undefined);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  return async (mode, work) => {
    const connection = await open();
    try {
      return await new Promise((resolve, reject) => {
        const request = work(connection.transaction(store, mode).objectStore(store));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    } finally {
      connection.close();
    }
  };
}
