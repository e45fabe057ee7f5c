/**
 * v2 JSON answers written at most 16,384 values per turn of the event loop, across all answers being built:
 * one `JSON.stringify` of 1,024 images × 4,096 values (the most an answer may hold) held the loop 860–878 ms,
 * and 1,000 one-image answers of one batch, each stringified at once, 1.1 s (an outside attack). Slices of
 * every answer queue in one line, served in arrival order, a turn's worth at a time. An answer is still built
 * whole before it is sent, so what its client has not read counts against its budget (unread-answers.ts); a
 * build whose client has gone stops at its next slice.
 */
import { DroppedRequestError } from './batcher.ts';

/** Values written per turn, all answers together: ~3 ms for 16,384 floats on the machines measured. */
export const JSON_VALUES_PER_TURN = 16_384;

interface Slice {
  values: number;
  run: () => void;
}

/** Slices waiting for a turn, oldest first; `drain` takes a turn's worth in a check phase of its own. */
const waiting: Slice[] = [];
let scheduled = false;

function drain(): void {
  scheduled = false;
  let written = 0;
  let taken = 0;
  for (const slice of waiting) {
    if (written > 0 && written + slice.values > JSON_VALUES_PER_TURN) break;
    written += slice.values;
    taken++;
    slice.run();
  }
  waiting.splice(0, taken);
  if (waiting.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

/** `write()` (the text of `values` values) in its turn; refused once `signal` has aborted. */
function inTurn(values: number, write: () => string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    waiting.push({
      values,
      run: () => {
        try {
          if (signal?.aborted) reject(new DroppedRequestError('client_gone'));
          else resolve(write());
        } catch (error) {
          reject(error); // never out of the shared drain: the other answers' slices are still to run
        }
      },
    });
    schedule();
  });
}

const encoder = new TextEncoder();

/**
 * `top` as JSON with `outputs` the given tensors, each with its `data` (where given) after its other fields —
 * the text `JSON.stringify` gives for `{ ...top, outputs: [{ ...meta, data: Array.from(data) }] }`. The values
 * must be finite (served outputs are checked: assertFiniteOutputs), so each one's text is its Number's.
 * Rejects with DroppedRequestError('client_gone') if `signal` aborts before the last slice.
 */
export async function jsonAnswerBytes(
  top: Record<string, unknown>,
  tensors: readonly { meta: Record<string, unknown>; data?: Float32Array }[],
  signal?: AbortSignal,
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
      const slice = data.subarray(start, start + JSON_VALUES_PER_TURN);
      add(await inTurn(slice.length, () => `${start > 0 ? ',' : ''}${slice.join(',')}`, signal));
    }
    add(']}');
  }
  add(']}');
  return Buffer.concat(pieces);
}
