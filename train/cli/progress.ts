/** The live progress bar for training on a terminal (stderr), shared by `train` and `start`. */
import { SingleBar } from 'cli-progress';
import type { LoopEvents } from '../loop.ts';

/** Loop events that print log lines to stdout and, on a TTY, a progress bar with loss, accuracy, speed, ETA. */
export function terminalEvents(totalEpochs: number): LoopEvents {
  const interactive = Boolean(process.stderr.isTTY) && !process.env.CI;
  const bar = new SingleBar({
    format: 'epoch {epoch} |{bar}| {value}/{total} | loss {loss} | acc {acc}% | {speed} img/s | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
    stream: process.stderr,
  });
  return {
    log: (line) => {
      if (bar.isActive) bar.stop();
      console.log(line);
    },
    epochStart: (epoch, batches) => {
      if (interactive) bar.start(batches, 0, { epoch: `${epoch}/${totalEpochs}`, loss: '-', acc: '-', speed: '-' });
    },
    progress: (p) => {
      if (!interactive) return;
      if (!bar.isActive) bar.start(p.batches, p.batch, {});
      bar.update(p.batch, {
        epoch: `${p.epoch}/${totalEpochs}`,
        loss: p.loss.toFixed(3),
        acc: p.accuracy.toFixed(1),
        speed: p.imagesPerSecond.toFixed(0),
      });
    },
    epochEnd: () => {
      if (bar.isActive) bar.stop();
    },
  };
}
