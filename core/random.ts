/**
 * A small seeded PRNG (mulberry32) whose whole state is one uint32, so a checkpoint can save it and a
 * resumed run continue the exact same stream.
 */
export class Rng {
  constructor(private state: number) {
    this.state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }
}

/**
 * An inverted-dropout mask of `length` values drawn from `rng`: 0 with probability p, else 1/(1-p). The
 * single-session and data-parallel trainers both draw through this, in the same order, so their masks agree.
 */
export function dropoutMask(rng: Rng, dropProbability: number, length: number): Float32Array {
  const mask = new Float32Array(length);
  const keep = 1 / (1 - dropProbability);
  for (let i = 0; i < length; i++) mask[i] = rng.next() < dropProbability ? 0 : keep;
  return mask;
}
