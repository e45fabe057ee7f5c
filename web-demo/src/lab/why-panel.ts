/**
 * "Why this answer?": saliency and Grad-CAM of the selected model on the pad's digit, for the predicted
 * class and any digit the user picks ("why not a 9?"), drawn over the 28×28 input and, on request, over
 * the drawing. The gradients come from the worker (gradients-worker.ts), which differentiates the served
 * model.onnx with the trainer's own gradient rules.
 */
import { IMAGE_SIDE, NUM_CLASSES } from '../../../core/contract.ts';
import type { ModelEntry } from '../models.ts';
import { type GradientsClient, modelKey } from './gradients-client.ts';
import type { ExplainedClass } from './gradients-protocol.ts';
import { drawHeat, overlayRgba } from './heat.ts';
import { inkBox, placement } from './pad-overlay.ts';

/** What tests and curious users can read back (`window.demo.why`). */
export interface WhyState {
  runs: number;
  model?: string;
  /** The 28×28 raw input the maps are for. */
  input?: number[];
  predicted?: number;
  /** The digit picked for "why not?", if any. */
  picked?: number;
  /** Per class: saliency and Grad-CAM (28×28; no Grad-CAM for a model without Conv). */
  shown: { class: number; saliency: number[]; cam?: number[] }[];
  ms?: number;
  error?: string;
}

/** The drawing the maps can be laid over: the pad's canvas and its ink (absent for a photo). */
export interface PadView {
  canvas: HTMLCanvasElement;
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
}

type Overlay = 'none' | 'saliency' | 'cam';

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = '') => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
};

export class WhyPanel {
  readonly state: WhyState = { runs: 0, shown: [] };
  private readonly picker = el('div', 'why-picker');
  private readonly rows = el('div', 'why-rows');
  private readonly status = el('p', 'status');
  private readonly overlaySelect = el('select');
  private readonly overlay: HTMLCanvasElement;
  private current?: { model: ModelEntry; input: Float32Array; predicted: number; pad?: PadView };
  private latest?: ExplainedClass[];
  private request = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly client: GradientsClient,
    padFrame: HTMLElement,
  ) {
    this.overlay = el('canvas', 'pad-overlay');
    this.overlay.hidden = true;
    padFrame.append(this.overlay);
    this.overlaySelect.id = 'why-overlay';
    for (const [value, label] of [
      ['none', 'nothing'],
      ['saliency', 'saliency'],
      ['cam', 'Grad-CAM'],
    ])
      this.overlaySelect.append(new Option(label, value));
    this.overlaySelect.addEventListener('change', () => this.drawOverlay());
    this.picker.id = 'why-picker';
    this.rows.id = 'why-rows';
    for (let d = 0; d < NUM_CLASSES; d++) {
      const b = el('button', '', String(d));
      b.type = 'button';
      b.dataset.digit = String(d);
      b.title = `Why (not) a ${d}?`;
      b.addEventListener('click', () => this.pick(d));
      this.picker.append(b);
    }
    const label = el('label', '', 'On the drawing: ');
    label.append(this.overlaySelect);
    root.append(
      el('h2', '', 'Why this answer?'),
      el(
        'p',
        'sub',
        "Saliency: how brightening each pixel would change the digit's score (red raises it, blue lowers it). Grad-CAM: where the last convolution's maps that vote for the digit lie. Both differentiate the model file itself, in a worker. Pick a digit to ask why not that one.",
      ),
      this.picker,
      this.rows,
      label,
      this.status,
    );
    root.hidden = true;
  }

  /** A new reading of the pad: explain the predicted class (and the picked one, if any). */
  update(model: ModelEntry, input: Float32Array, predicted: number, pad?: PadView): void {
    this.current = { model, input, predicted, ...(pad ? { pad } : {}) };
    if (this.state.picked === predicted) this.state.picked = undefined;
    void this.run();
  }

  clear(): void {
    this.current = undefined;
    this.request++;
    this.root.hidden = true;
    this.overlay.hidden = true;
    Object.assign(this.state, { input: undefined, predicted: undefined, shown: [], error: undefined });
  }

  /** Hide the overlay while the user draws. */
  hideOverlay(): void {
    this.overlay.hidden = true;
  }

  private pick(digit: number): void {
    this.state.picked = digit === this.current?.predicted ? undefined : digit;
    void this.run();
  }

  private async run(): Promise<void> {
    const current = this.current;
    if (!current) return;
    const id = ++this.request;
    const { model, input, predicted } = current;
    const classes = [predicted, ...(this.state.picked === undefined ? [] : [this.state.picked])];
    this.root.hidden = false;
    this.status.textContent = 'Differentiating…';
    // Blank maps in the final layout at once, so the answer arriving moves nothing below (the explainer).
    const blank = new Float32Array(input.length);
    this.latest = undefined;
    this.render(
      input,
      predicted,
      classes.map((c) => ({ class: c, saliency: blank, cam: blank })),
    );
    try {
      const reply = await this.client.explain(model, { pixels: input.slice(), classes });
      if (id !== this.request) return;
      this.latest = reply.classes;
      Object.assign(this.state, {
        model: modelKey(model),
        input: Array.from(input),
        predicted,
        shown: reply.classes.map((c) => ({
          class: c.class,
          saliency: Array.from(c.saliency),
          ...(c.cam && { cam: Array.from(c.cam) }),
        })),
        ms: reply.ms,
        error: undefined,
      });
      this.state.runs++;
      this.render(input, predicted, reply.classes);
      this.status.textContent = `${reply.ms.toFixed(0)} ms in the worker (gradient model of ${model.name}).`;
    } catch (error) {
      if (id !== this.request) return;
      this.state.error = (error as Error).message;
      this.rows.replaceChildren();
      this.status.textContent = `Cannot explain this model: ${this.state.error}`;
    }
  }

  private render(input: Float32Array, predicted: number, classes: ExplainedClass[]): void {
    this.picker.querySelectorAll('button').forEach((b) => {
      const d = Number(b.dataset.digit);
      b.classList.toggle('predicted', d === predicted);
      b.classList.toggle('selected', d === this.state.picked);
    });
    this.rows.replaceChildren(
      ...classes.map((c) => {
        const row = el('div', 'why-row');
        row.dataset.class = String(c.class);
        const title = c.class === predicted ? `Why a ${c.class}` : `Why not a ${c.class}`;
        const figure = (kind: 'saliency' | 'cam', map: Float32Array | undefined, caption: string) => {
          const f = el('figure');
          if (!map) {
            f.append(el('figcaption', '', 'no Grad-CAM: this model has no convolution'));
            return f;
          }
          const canvas = el('canvas');
          canvas.className = kind;
          drawHeat(canvas, input, map, kind === 'saliency' ? 'signed' : 'positive');
          f.append(canvas, el('figcaption', '', caption));
          return f;
        };
        row.append(el('h3', '', title), figure('saliency', c.saliency, 'saliency'), figure('cam', c.cam, 'Grad-CAM'));
        return row;
      }),
    );
    this.drawOverlay();
  }

  /** The predicted class's map over the drawing, placed by the ink boxes (pad-overlay.ts). */
  private drawOverlay(): void {
    const kind = this.overlaySelect.value as Overlay;
    const first = this.latest?.[0];
    const pad = this.current?.pad;
    const input = this.current?.input;
    this.overlay.hidden = true;
    if (kind === 'none' || !first || !pad || !input) return;
    const padBox = inkBox(
      (i) => pad.rgba[i * 4] as number, // white ink on black: the red channel is the ink
      pad.width,
      pad.height,
      40,
    );
    const inputBox = inkBox((i) => input[i] as number, IMAGE_SIDE, IMAGE_SIDE, 0.15);
    if (!padBox || !inputBox) return;
    const map = kind === 'saliency' ? first.saliency : first.cam;
    if (!map) return;
    const rgba = overlayRgba(map, kind === 'saliency' ? 'signed' : 'positive');
    const tile = el('canvas');
    tile.width = tile.height = IMAGE_SIDE;
    tile.getContext('2d')?.putImageData(new ImageData(rgba, IMAGE_SIDE, IMAGE_SIDE), 0, 0);
    this.overlay.width = pad.width;
    this.overlay.height = pad.height;
    const ctx = this.overlay.getContext('2d');
    if (!ctx) return;
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(tile, ...placement(inputBox, padBox));
    this.overlay.hidden = false;
  }
}
