/**
 * A tiny, learnable stand-in for MNIST: each class is a bar at its own place and angle on a black
 * 28×28 background, with jitter and noise. For testing that training learns, not for accuracy claims.
 */
import { Rng } from '../../core/random.ts';

export function syntheticDigits(count: number, seed = 1): { images: Float32Array; labels: number[] } {
  const rng = new Rng(seed);
  const images = new Float32Array(count * 784);
  const labels: number[] = [];
  for (let n = 0; n < count; n++) {
    const label = rng.int(10);
    labels.push(label);
    const angle = (label * Math.PI) / 10;
    const [cy, cx] = [14 + rng.uniform(-2, 2), 14 + rng.uniform(-2, 2)];
    for (let t = -9; t <= 9; t += 0.5) {
      const y = Math.round(cy + t * Math.sin(angle));
      const x = Math.round(cx + t * Math.cos(angle) + (label % 2 ? 3 : -3));
      if (y >= 0 && y < 28 && x >= 0 && x < 28) images[n * 784 + y * 28 + x] = 0.7 + 0.3 * rng.next();
    }
  }
  // The tutorial's normalization.
  for (let i = 0; i < images.length; i++) images[i] = ((images[i] as number) - 0.1307) / 0.3081;
  return { images, labels };
}
