/**
 * The drawing pad: pointer events (mouse, touch, pen), smooth strokes (quadratic curves through the
 * midpoints) about as thick relative to the digit as MNIST's, undo and clear. Strokes are kept as
 * points, so undo redraws exactly. A photo can take the pad's place until the next stroke or clear.
 */
import type { Photo } from './photo.ts';

type Point = [x: number, y: number];

export interface PadEvents {
  /** While drawing (the caller throttles). */
  change: () => void;
  /** After each stroke, undo and clear. */
  settle: () => void;
}

export class DrawingPad {
  private readonly strokes: Point[][] = [];
  private current: Point[] | undefined;
  private photo: Photo | undefined;
  private readonly ctx: CanvasRenderingContext2D;

  constructor(
    readonly canvas: HTMLCanvasElement,
    private readonly events: PadEvents,
  ) {
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas');
    this.ctx = ctx;
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'pointerleave'] as const)
      canvas.addEventListener(type, () => this.up());
    this.redraw();
  }

  get empty(): boolean {
    return this.strokes.length === 0 && !this.current && !this.photo;
  }

  /** Show a photo in the pad; its own pixels (not the pad's) are what `pixels()` gives until the next stroke. */
  showPhoto(photo: Photo): void {
    this.strokes.length = 0;
    this.current = undefined;
    this.photo = photo;
    this.redraw();
    this.events.settle();
  }

  private point(e: PointerEvent): Point {
    const r = this.canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) / r.width) * this.canvas.width,
      ((e.clientY - r.top) / r.height) * this.canvas.height,
    ];
  }

  private down(e: PointerEvent): void {
    if (e.button !== 0) return;
    this.canvas.setPointerCapture(e.pointerId);
    this.photo = undefined; // drawing starts afresh
    this.current = [this.point(e)];
    this.redraw();
    this.events.change();
  }

  private move(e: PointerEvent): void {
    if (!this.current) return;
    // Coalesced events keep fast pen strokes smooth.
    for (const ev of e.getCoalescedEvents?.() ?? [e]) this.current.push(this.point(ev));
    this.redraw();
    this.events.change();
  }

  private up(): void {
    if (!this.current) return;
    this.strokes.push(this.current);
    this.current = undefined;
    this.events.settle();
  }

  undo(): void {
    this.strokes.pop();
    this.redraw();
    this.events.settle();
  }

  clear(): void {
    this.photo = undefined;
    this.strokes.length = 0;
    this.current = undefined;
    this.redraw();
    this.events.settle();
  }

  private redraw(): void {
    const { ctx, canvas } = this;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (this.photo) {
      const { bitmap } = this.photo;
      const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
      const [w, h] = [bitmap.width * scale, bitmap.height * scale];
      ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    }
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    // A digit drawn across most of the pad gets strokes ~1/16 of the pad: MNIST's ratio after its 20 px fit.
    ctx.lineWidth = canvas.width / 16;
    for (const stroke of this.current ? [...this.strokes, this.current] : this.strokes) {
      const [first] = stroke;
      if (!first) continue;
      ctx.beginPath();
      ctx.moveTo(first[0], first[1]);
      if (stroke.length === 1) {
        ctx.arc(first[0], first[1], ctx.lineWidth / 2, 0, Math.PI * 2);
        ctx.fill();
        continue;
      }
      for (let i = 1; i < stroke.length - 1; i++) {
        const [x, y] = stroke[i] as Point;
        const [nx, ny] = stroke[i + 1] as Point;
        ctx.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
      }
      const last = stroke[stroke.length - 1] as Point;
      ctx.lineTo(last[0], last[1]);
      ctx.stroke();
    }
  }

  /** The pad's pixels as RGBA (a shown photo's own, full-resolution pixels). */
  pixels(): { rgba: Uint8ClampedArray; width: number; height: number } {
    if (this.photo) return this.photo;
    const { width, height } = this.canvas;
    return { rgba: this.ctx.getImageData(0, 0, width, height).data, width, height };
  }
}
