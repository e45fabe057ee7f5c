/**
 * More threads than cores only slows a step (workers spin while they wait for each other) and costs an
 * ORT session each: a new run gets at most one thread per core, and a one-line notice says so.
 */
import { availableParallelism } from 'node:os';

/** `notice` gets the line (stderr's, as train and reproduce print it). */
export function threadsForThisMachine(threads: number, notice: (line: string) => void): number {
  const cores = availableParallelism();
  if (threads <= cores) return threads;
  notice(`notice: --threads ${threads} is more than this machine's ${cores} cores; using ${cores}`);
  return cores;
}
