/**
 * v2 JSON answers written at most 16,384 values per turn of the event loop, across all answers being built:
 * one `JSON.stringify` of 1,024 images × 4,096 values (the most an answer may hold) held the loop 860–878 ms,
 * and 1,000 one-image answers of one batch, each stringified at once, 1.1 s (an outside attack). Each turn
 * the oldest answer under way writes half the budget, and the other half goes round the clients (addresses)
 * with answers waiting, a slice each: a big answer finishes in a bounded number of turns however many small
 * ones flood in behind it (shared only in turn, a 1,024-image answer took 115 s under 128 connections of small
 * ones), and a client's answers wait for the other clients, not for their connections (shared per answer, a
 * one-image answer waited 1.6 s behind 4 addresses × 64 connections). An answer is still built whole before
 * it is sent, so what its client has not read counts against its budget (unread-answers.ts); a build whose
 * client has gone stops at its next slice.
 */
import { DroppedRequestError } from './batcher.ts';

/** Values written per turn, all answers together: ~3 ms for 16,384 floats on the machines measured. */
export const JSON_VALUES_PER_TURN = 16_384;
/** One slice: half a turn, so the oldest answer's slice leaves room for the others'. */
export const JSON_VALUES_PER_SLICE = JSON_VALUES_PER_TURN / 2;

interface Slice {
  /** Its answer's place in line: answers are numbered as they start. */
  answer: number;
  /** Whose answer: the other half of each turn goes round the clients. */
  client: string;
  values: number;
  run: () => void;
}

/** Slices waiting for a turn, in the order they were queued; `drain` takes a turn's worth in a check phase. */
let waiting: Slice[] = [];
let answersStarted = 0;
let scheduled = false;
/** Clients served from the shared half, least recently first; one never served (or not lately) goes first. */
let rotation: string[] = [];

/** The first waiting slice (not in `taken`) of the client served least recently; -1 if none. */
function leastRecentlyServed(taken: Set<number>): number {
  const firstOf = new Map<string, number>();
  for (const [i, slice] of waiting.entries())
    if (!taken.has(i) && !firstOf.has(slice.client)) firstOf.set(slice.client, i);
  let best = -1;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const [client, i] of firstOf) {
    const rank = rotation.indexOf(client); // -1: not served lately
    if (rank < bestRank || (rank === bestRank && i < best)) [best, bestRank] = [i, rank];
  }
  return best;
}

function drain(): void {
  scheduled = false;
  if (waiting.length === 0) return;
  // The oldest answer's slice first: its answer finishes in a bounded number of turns.
  let oldest = 0;
  for (let i = 1; i < waiting.length; i++)
    if ((waiting[i] as Slice).answer < (waiting[oldest] as Slice).answer) oldest = i;
  const taken = new Set([oldest]);
  let written = (waiting[oldest] as Slice).values;
  // The rest of the turn round the clients, a slice each: many connections buy a client no more of it.
  for (;;) {
    const next = leastRecentlyServed(taken);
    const slice = waiting[next];
    if (!slice || written + slice.values > JSON_VALUES_PER_TURN) break;
    taken.add(next);
    written += slice.values;
    rotation = [...rotation.filter((client) => client !== slice.client), slice.client];
  }
  const run = waiting.filter((_, i) => taken.has(i));
  waiting = waiting.filter((_, i) => !taken.has(i));
  for (const slice of run) slice.run(); // their next slices queue as microtasks, after this turn
  const present = new Set([...waiting, ...run].map((slice) => slice.client));
  rotation = rotation.filter((client) => present.has(client));
  if (waiting.length > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

/** `write()` (the text of `values` values of `slice`'s answer) in its turn; refused once `signal` has aborted. */
function inTurn(
  slice: Pick<Slice, 'answer' | 'client'>,
  values: number,
  write: () => string,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    waiting.push({
      ...slice,
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
 * Rejects with DroppedRequestError('client_gone') if `signal` aborts before the last slice; `client` (its
 * address) is whom the turns go round.
 */
export async function jsonAnswerBytes(
  top: Record<string, unknown>,
  tensors: readonly { meta: Record<string, unknown>; data?: Float32Array }[],
  { signal, client = 'local' }: { signal?: AbortSignal; client?: string } = {},
): Promise<Uint8Array> {
  const answer = { answer: answersStarted++, client };
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
    for (let start = 0; start < data.length; start += JSON_VALUES_PER_SLICE) {
      const slice = data.subarray(start, start + JSON_VALUES_PER_SLICE);
      add(await inTurn(answer, slice.length, () => `${start > 0 ? ',' : ''}${slice.join(',')}`, signal));
    }
    add(']}');
  }
  add(']}');
  return Buffer.concat(pieces);
}
