/**
 * Calls `onInflater` each time this process makes a gunzip stream (node:zlib's createGunzip, the named imports
 * bound to it included): what the gRPC server decompresses is seen from outside it. Returns the undo.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

export function spyOnGunzip(onInflater: () => void): () => void {
  const zlib = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
  const createGunzip = zlib.createGunzip;
  // Node defines it read-only but configurable.
  const replace = (value: typeof createGunzip) => {
    Object.defineProperty(zlib, 'createGunzip', { value, writable: false, enumerable: true, configurable: true });
    syncBuiltinESMExports();
  };
  replace((...args) => {
    onInflater();
    return createGunzip(...args);
  });
  return () => replace(createGunzip);
}
