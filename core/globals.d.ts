/**
 * The few globals both Node and browsers provide that the portable core uses; declared here because the
 * core compiles without Node's and the DOM's type libraries (core/tsconfig.json).
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
declare function structuredClone<T>(value: T): T;
declare const performance: { now(): number };
