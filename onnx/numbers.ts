import type { Int64 } from './schema.ts';

/** protobufjs reads int64 as Long objects (or plain numbers when small); give back a JS number. */
export function toNumber(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}
