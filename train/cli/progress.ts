/** The live progress bar for training on a terminal (stderr), shared by `train` and `start`. */
import { SingleBar } from 'cli-progress';
import { type CliIo, lines } from '../../node/cli/io.ts';
import type { LoopEvents } from '../loop.ts';

/** Loop events that print log lines to io.out and, on io's terminal, a progress bar with loss, accuracy, speed, ETA. */
export function terminalEvents(totalEpochs: number, io: CliIo): LoopEvents {
  const print = lines(io.out);
  const bar =
    io.terminal &&
    new SingleBar({
      format: 'epoch {epoch} |{bar}| {value}/{total} | loss {loss} | acc {acc}% | {speed} img/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      stream: io.terminal,
    });
  return {
    log: (line) => {
      if (bar?.isActive) bar.stop();
      print(line);
    },
    epochStart: (epoch, batches) => {
      bar?.start(batches, 0, { epoch: `${epoch}/${totalEpochs}`, loss: '-', acc: '-', speed: '-' });
    },
    progress: (p) => {
      if (!bar) return;
      if (!bar.isActive) bar.start(p.batches, p.batch, {});
      bar.update(p.batch, {
        epoch: `${p.epoch}/${totalEpochs}`,
        loss: p.loss.toFixed(3),
        acc: p.accuracy.toFixed(1),
        speed: p.imagesPerSecond.toFixed(0),
      });
    },
    epochEnd: () => {
      if (bar?.isActive) bar.stop();
    },
  };
}
