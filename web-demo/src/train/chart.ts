/**
 * A live training chart on a plain canvas: per-batch loss (left axis) and accuracy (right axis, %) against
 * the step, plus each epoch's held-out test accuracy as a dot. Redraws at most once per animation frame.
 */
export class TrainingChart {
  private readonly loss: number[] = [];
  private readonly accuracy: number[] = [];
  private readonly epochs: { step: number; testAccuracy: number }[] = [];
  private totalSteps = 1;
  private pending = false;

  constructor(private readonly canvas: HTMLCanvasElement) {}

  reset(totalSteps: number): void {
    this.loss.length = 0;
    this.accuracy.length = 0;
    this.epochs.length = 0;
    this.totalSteps = Math.max(1, totalSteps);
    this.schedule();
  }

  addBatch(loss: number, accuracy: number): void {
    this.loss.push(loss);
    this.accuracy.push(accuracy);
    this.schedule();
  }

  addEpoch(testAccuracy: number): void {
    this.epochs.push({ step: this.loss.length, testAccuracy });
    this.schedule();
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  private draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.canvas;
    const pad = { left: 44, right: 44, top: 12, bottom: 26 };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const style = getComputedStyle(this.canvas);
    const fg = style.color || '#888';
    ctx.clearRect(0, 0, width, height);
    ctx.font = '12px system-ui, sans-serif';
    ctx.strokeStyle = fg;
    ctx.globalAlpha = 0.3;
    ctx.strokeRect(pad.left, pad.top, w, h);
    ctx.globalAlpha = 1;
    const maxLoss = Math.max(0.5, ...this.loss.slice(0, 5), ...this.loss);
    const x = (step: number) => pad.left + (w * step) / this.totalSteps;
    const yLoss = (v: number) => pad.top + h * (1 - Math.min(v, maxLoss) / maxLoss);
    const yAcc = (v: number) => pad.top + h * (1 - v / 100);
    const line = (values: number[], y: (v: number) => number, color: string) => {
      // Exponential smoothing (as TensorBoard's) keeps per-batch noise readable.
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let smooth = values[0] ?? 0;
      values.forEach((v, i) => {
        smooth = i === 0 ? v : 0.8 * smooth + 0.2 * v;
        if (i === 0) ctx.moveTo(x(i + 1), y(smooth));
        else ctx.lineTo(x(i + 1), y(smooth));
      });
      ctx.stroke();
    };
    line(this.loss, yLoss, '#d9534f');
    line(this.accuracy, yAcc, '#2f6fde');
    ctx.fillStyle = '#1a9c5b';
    for (const e of this.epochs) {
      ctx.beginPath();
      ctx.arc(x(e.step), yAcc(e.testAccuracy), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = fg;
    ctx.textAlign = 'right';
    ctx.fillText(maxLoss.toFixed(2), pad.left - 4, pad.top + 10);
    ctx.fillText('0', pad.left - 4, pad.top + h);
    ctx.textAlign = 'left';
    ctx.fillText('100%', pad.left + w + 4, pad.top + 10);
    ctx.fillText('0%', pad.left + w + 4, pad.top + h);
    ctx.textAlign = 'center';
    ctx.fillText(`step (of ${this.totalSteps})`, pad.left + w / 2, height - 6);
  }
}
