/** Running Debian's PyTorch beside us, when it is installed (the project never needs it). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';

export function torchVersion(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    return undefined;
  }
}

/** PyTorch's training images/s for a model, in a child process. */
export function torchTrainingThroughput(model: string, threads: number, batch: number, seconds: number): number {
  const script = fileURLToPath(new URL('./torch_train.py', import.meta.url));
  const args = [
    script,
    '--model',
    model,
    '--threads',
    String(threads),
    '--batch',
    String(batch),
    '--seconds',
    String(seconds),
  ];
  const out = execFileSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (JSON.parse(out.trim().split('\n').at(-1) as string) as { imagesPerSecond: number }).imagesPerSecond;
}
