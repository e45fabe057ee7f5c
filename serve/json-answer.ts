/**
 * A v2 JSON answer whose tensors' `data` is written a slice of values per turn of the event loop: one
 * `JSON.stringify` of 1,024 images × 4,096 values (the most an answer may hold) held the loop 0.6–1.4 s, every
 * other request and health check waiting behind it. The answer is still built whole before it is sent, so
 * what its client has not read is counted as before (unread-answers.ts).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Values written per turn: ~3 ms for 16,384 floats on the machines measured. */
export const JSON_VALUES_PER_TURN = 16_384;

const encoder = new TextEncoder();

/**
 * `top` as JSON with `outputs` the given tensors, each with its `data` (where given) after its other fields —
 * the text `JSON.stringify` gives for `{ ...top, outputs: [{ ...meta, data: Array.from(data) }] }`. The values
 * must be finite (served outputs are checked: assertFiniteOutputs), so each one's text is its Number's.
 */
export async function jsonAnswerBytes(
  top: Record<string, unknown>,
  tensors: readonly { meta: Record<string, unknown>; data?: Float32Array }[],
): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  const add = (text: string) => pieces.push(encoder.encode(text));
  const head = JSON.stringify({ ...top, outputs: [] });
  add(head.slice(0, -2)); // `…"outputs":[`, its `]}` closed at the end
  for (const [t, { meta, data }] of tensors.entries()) {
    const separator = t > 0 ? ',' : '';
    if (!data) {
      add(`${separator}${JSON.stringify(meta)}`);
      continue;
    }
    add(`${separator}${JSON.stringify(meta).slice(0, -1)},"data":[`);
    for (let start = 0; start < data.length; start += JSON_VALUES_PER_TURN) {
      if (start > 0) await nextTurn();
      add(`${start > 0 ? ',' : ''}${data.subarray(start, start + JSON_VALUES_PER_TURN).join(',')}`);
    }
    add(']}');
  }
  add(']}');
  return Buffer.concat(pieces);
}
