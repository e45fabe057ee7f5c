/**
 * How many images of a batch each worker takes. Equal shares by default; with balancing, shares follow
 * each worker's measured speed, because cores are not equal: hybrid CPUs (performance and efficiency
 * cores), and shared or virtual machines whose vCPUs run at different speeds under load (measured on
 * this project's 2-vCPU machine: the same 32-image gradient run took 3.1 ms on one and 4.6 ms on the
 * other while both ran). With equal slices every step waits for the slowest.
 */

/** Speeds as an exponential moving average of images per millisecond, one per worker. */
export class SpeedEstimate {
  private readonly speeds: number[];

  constructor(
    workers: number,
    /** Weight of the newest measurement. */
    private readonly smoothing = 0.2,
  ) {
    this.speeds = Array.from({ length: workers }, () => 0);
  }

  /** Record that `worker` ran `images` in `ms`. */
  observe(worker: number, images: number, ms: number): void {
    if (!(ms > 0) || images <= 0) return;
    const speed = images / ms;
    const old = this.speeds[worker] as number;
    this.speeds[worker] = old === 0 ? speed : old + this.smoothing * (speed - old);
  }

  /** Current speeds (0 for a worker not yet measured). */
  get current(): readonly number[] {
    return this.speeds;
  }
}

/**
 * Split `n` images into one count per worker, proportional to `speeds` (equal while any is unknown),
 * every count ≥ 1 when n ≥ workers, summing to n (largest remainders get the leftover images).
 */
export function shares(n: number, speeds: readonly number[]): number[] {
  const workers = speeds.length;
  const known = speeds.every((s) => s > 0);
  const weights = known ? speeds : speeds.map(() => 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const floor = n >= workers ? 1 : 0;
  const free = n - floor * workers;
  const exact = weights.map((w) => (free * w) / total);
  const counts = exact.map((x) => Math.floor(x) + floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    counts[i] = (counts[i] as number) + 1;
    left--;
  }
  return counts;
}
