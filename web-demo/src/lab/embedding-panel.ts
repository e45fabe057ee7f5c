/**
 * "What the classifier sees": MNIST test digits as points of the selected model's penultimate features,
 * projected to 2-D by UMAP in a worker, coloured by their true digit; hovering a point shows its digit;
 * the pad's digit joins them as a ringed point, placed by the fitted UMAP's transform.
 */
import { IMAGE_PIXELS, IMAGE_SIDE } from '../../../core/contract.ts';
import { type ModelEntry, modelBytesToTransfer } from '../models.ts';
import type { Embedding, EmbedRequest, FromEmbedding, PlaceRequest } from './embedding-protocol.ts';
import { modelKey } from './gradients-client.ts';
import { drawImage } from './heat.ts';
import { DIGIT_COLOURS, drawScatter, type Frame, frameOf, nearest } from './scatter.ts';

/** What tests and curious users can read back (`window.demo.embedding`). */
export interface EmbeddingState {
  running: boolean;
  model?: string;
  count?: number;
  /** x, y per test image, interleaved; and their labels. */
  points?: number[];
  labels?: number[];
  features?: string;
  dims?: number;
  featureSeconds?: number;
  fitSeconds?: number;
  /** The pad's digit, placed: its 2-D point and what the model reads. */
  drawn?: { point: [number, number]; prediction: number };
  /** The test image under the pointer. */
  hovered?: number;
  error?: string;
}

const DEFAULT_COUNT = 2000;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = '') => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
};

export class EmbeddingPanel {
  readonly state: EmbeddingState = { running: false };
  private readonly worker = new Worker(new URL('./embedding-worker.ts', import.meta.url), {
    type: 'module',
    name: 'embedding',
  });
  private readonly runButton = el('button', '', 'Map the test digits');
  private readonly count = el('input');
  private readonly progress = el('progress');
  private readonly status = el('p', 'status');
  private readonly canvas = el('canvas');
  private readonly tip = el('div', 'embed-tip');
  private readonly tipImage = el('canvas');
  private readonly tipText = el('span');
  private embedding?: Embedding;
  private frame?: Frame;
  /** The canvas's CSS size when last drawn: the frame's units. */
  private side = 0;
  private request = 0;
  private placing?: Float32Array;

  constructor(
    root: HTMLElement,
    private readonly model: () => ModelEntry | undefined,
  ) {
    this.runButton.type = 'button';
    this.runButton.id = 'embed-run';
    Object.assign(this.count, { id: 'embed-count', type: 'number', min: '100', max: '10000', step: '100' });
    this.count.value = String(DEFAULT_COUNT);
    this.progress.hidden = true;
    this.canvas.id = 'embed-canvas';
    this.canvas.hidden = true;
    this.status.setAttribute('aria-live', 'polite');
    this.tip.hidden = true;
    this.tip.append(this.tipImage, this.tipText);
    const legend = el('div', 'embed-legend');
    DIGIT_COLOURS.forEach((colour, d) => {
      const key = el('span', '', String(d));
      key.style.setProperty('--colour', colour);
      legend.append(key);
    });
    const label = el('label', '', 'test digits ');
    label.append(this.count);
    const tools = el('div', 'tools');
    tools.append(label, this.runButton, this.progress);
    const plot = el('div', 'embed-plot');
    plot.append(this.canvas, this.tip);
    root.append(
      el('h2', '', 'What the classifier sees'),
      el(
        'p',
        'sub',
        "Each MNIST test digit as a point: the features the model's last layer reads, projected to 2-D by UMAP in a worker, coloured by the true digit. Hover a point to see its digit; your drawing is the ringed point, placed by the same UMAP.",
      ),
      tools,
      this.status,
      legend,
      plot,
    );
    this.runButton.addEventListener('click', () => void this.run());
    this.worker.onmessage = (event: MessageEvent<FromEmbedding>) => this.receive(event.data);
    new ResizeObserver(() => {
      if (this.embedding && this.canvas.clientWidth !== this.side) this.draw();
    }).observe(this.canvas);
    this.canvas.addEventListener('pointermove', (e) => this.hover(e));
    this.canvas.addEventListener('pointerleave', () => {
      this.tip.hidden = true;
      this.state.hovered = undefined;
    });
  }

  /** The selected model changed: the map describes another model. */
  modelChanged(): void {
    const model = this.model();
    if (!this.state.model || (model && modelKey(model) === this.state.model)) return;
    this.request++;
    this.embedding = undefined;
    this.canvas.hidden = true;
    Object.assign(this.state, { model: undefined, points: undefined, labels: undefined, drawn: undefined });
    this.status.textContent = '';
  }

  /** The pad's digit changed: place it among the points (when there are points of this model). */
  place(pixels: Float32Array | undefined): void {
    this.placing = pixels; // placed when the points arrive, if they are still coming
    if (!this.embedding || this.state.running) return;
    if (!pixels) {
      this.state.drawn = undefined;
      this.draw();
      return;
    }
    const request: PlaceRequest = { type: 'place', id: this.request, pixels: pixels.slice() };
    this.worker.postMessage(request);
  }

  private async run(): Promise<void> {
    const model = this.model();
    if (!model) return;
    const count = Math.max(100, Math.min(10_000, Math.round(Number(this.count.value) || DEFAULT_COUNT)));
    const id = ++this.request;
    Object.assign(this.state, { running: true, model: modelKey(model), count, error: undefined, drawn: undefined });
    this.runButton.disabled = true;
    this.progress.hidden = false;
    this.status.textContent = `Reading ${count.toLocaleString('en')} test digits…`;
    try {
      const bytes = await modelBytesToTransfer(model);
      const request: EmbedRequest = { type: 'embed', id, bytes, count };
      this.worker.postMessage(request, [bytes.buffer]);
    } catch (error) {
      this.receive({ type: 'error', id, message: (error as Error).message });
    }
  }

  private receive(m: FromEmbedding): void {
    if (m.id !== this.request) return;
    if (m.type === 'progress') {
      this.progress.max = m.total;
      this.progress.value = m.done;
      this.status.textContent =
        m.stage === 'features'
          ? `Reading test digits: ${m.done.toLocaleString('en')} of ${m.total.toLocaleString('en')}…`
          : `UMAP: epoch ${m.done} of ${m.total}…`;
      return;
    }
    if (m.type === 'placed') {
      this.state.drawn = { point: m.point, prediction: m.prediction };
      this.draw();
      return;
    }
    this.state.running = false;
    this.runButton.disabled = false;
    this.progress.hidden = true;
    if (m.type === 'error') {
      this.state.error = m.message;
      this.status.textContent = `Error: ${m.message}`;
      return;
    }
    this.embedding = m;
    Object.assign(this.state, {
      points: Array.from(m.points),
      labels: Array.from(m.labels),
      features: m.features,
      dims: m.dims,
      featureSeconds: m.featureSeconds,
      fitSeconds: m.fitSeconds,
    });
    this.status.textContent = `${m.labels.length.toLocaleString('en')} test digits: ${m.dims} features each (${m.features}), read in ${m.featureSeconds.toFixed(1)} s; UMAP took ${m.fitSeconds.toFixed(1)} s.`;
    this.canvas.hidden = false;
    this.draw();
    if (this.placing) this.place(this.placing);
  }

  private draw(): void {
    const e = this.embedding;
    if (!e) return;
    // CSS sizes the canvas (the plot's width, at most 520 px, square); draw at its size in device pixels.
    const side = this.canvas.clientWidth || 520;
    this.side = side;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = this.canvas.height = Math.round(side * ratio);
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, side, side);
    const drawn = this.state.drawn?.point;
    const all = drawn ? [...e.points, ...drawn] : e.points; // the frame holds the drawing too
    this.frame = frameOf(all, side, side);
    drawScatter(ctx, e.points, e.labels, this.frame, side < 400 ? 1.6 : 2.2);
    if (drawn) {
      const [x, y] = this.frame.toCanvas(...drawn);
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#000';
      ctx.fillStyle = DIGIT_COLOURS[this.state.drawn?.prediction ?? 0] as string;
      ctx.beginPath();
      ctx.arc(x, y, 8, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  private hover(event: PointerEvent): void {
    const e = this.embedding;
    if (!e || !this.frame) return;
    const box = this.canvas.getBoundingClientRect();
    const scale = this.side / (box.width || 1);
    const [px, py] = [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale];
    const index = nearest(e.points, this.frame, px, py, 8);
    this.state.hovered = index < 0 ? undefined : index;
    this.tip.hidden = index < 0;
    if (index < 0) return;
    drawImage(
      this.tipImage,
      Array.from(e.pixels.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS), (v) => v / 255),
    );
    this.tipText.textContent = `a ${e.labels[index]} (test #${index})`;
    this.tip.style.left = `${Math.min(px / scale + 12, box.width - 90)}px`;
    this.tip.style.top = `${Math.max(0, py / scale - IMAGE_SIDE * 2 - 24)}px`;
  }
}
