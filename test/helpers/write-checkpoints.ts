/** Child process for the crash test: writes ever-newer large checkpoints until it is killed. */
import { saveCheckpoint } from '../../train/checkpoint.ts';

const path = process.argv[2] as string;
const big = new Float32Array(8_000_000);
const record = (epoch: number) => ({
  epoch,
  trainLoss: 1,
  trainAccuracy: 1,
  testLoss: 1,
  testAccuracy: 1,
  seconds: 1,
  imagesPerSecond: 1,
  lr: 1,
});
for (let epoch = 1; ; epoch++) {
  big.fill(epoch);
  await saveCheckpoint(path, {
    epoch,
    trainer: { tensors: new Map([['w', big]]), stepCount: epoch, rngState: epoch },
    dataRngState: epoch,
    history: Array.from({ length: epoch }, (_, i) => record(i + 1)),
  });
  process.stdout.write(`${epoch}\n`);
}
