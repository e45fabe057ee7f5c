/**
 * More threads than cores only slows a step (workers spin while they wait for each other) and costs an
 * ORT session each: a new run gets at most one thread per core, and a one-line notice says so.
 */
import { availableParallelism } from 'node:os';

export function threadsForThisMachine(threads: number): number {
  const cores = availableParallelism();
  if (threads <= cores) return threads;
  console.error(`notice: --threads ${threads} is more than this machine's ${cores} cores; using ${cores}`);
  return cores;
}
