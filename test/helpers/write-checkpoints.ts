/** Child process for the crash test: writes ever-newer large checkpoints until it is killed. */
import { saveCheckpoint } from '../../train/checkpoint.ts';

const path = process.argv[2] as string;
const big = new Float32Array(8_000_000);
for (let epoch = 1; ; epoch++) {
  big.fill(epoch);
  await saveCheckpoint(path, {
    epoch,
    trainer: { tensors: new Map([['w', big]]), stepCount: epoch, rngState: epoch },
    dataRngState: epoch,
  });
  process.stdout.write(`${epoch}\n`);
}
