/**
 * "Where it fails": the selected model on MNIST's 10,000 test images (in a worker), as a confusion matrix
 * with each digit's accuracy; clicking a cell shows the digits misread that way with the model's
 * probabilities, and clicking one of those loads it into the pad and the explainer.
 */
import { IMAGE_SIDE, NUM_CLASSES } from '../../../core/contract.ts';
import { type ModelEntry, modelBytesToTransfer } from '../models.ts';
import { accuracy, type Confusion, confusionMatrix, perClassAccuracy } from './confusion.ts';
import type { EvaluateRequest, FromLab, Misread } from './protocol.ts';

/** MNIST's test set: all of it. */
const TEST_IMAGES = 10_000;
/** Most digits a gallery shows (a cell of a weak model can hold hundreds). */
const GALLERY_MAX = 60;

/** What tests and curious users can read back (`window.demo.lab`). */
export interface FailureLabState {
  running: boolean;
  /** The tested model, as `name/version`. */
  model?: string;
  confusion?: Confusion;
  perClass?: number[];
  accuracy?: number;
  /** Every test image's answer, in order. */
  predictions?: number[];
  seconds?: number;
  /** The clicked cell, and how many digits its gallery shows. */
  cell?: { label: number; predicted: number; shown: number };
  /** The MNIST test index last loaded into the pad. */
  picked?: number;
  error?: string;
}

export interface FailureLabHooks {
  model(): ModelEntry | undefined;
  /** Load a 28×28 raw [0, 1] image into the pad and the explainer. */
  pick(pixels: Float32Array): void;
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = '') => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
};

function thumbnail(pixels: Uint8Array): HTMLCanvasElement {
  const canvas = el('canvas');
  canvas.width = canvas.height = IMAGE_SIDE;
  const ctx = canvas.getContext('2d');
  if (ctx) {
    const image = ctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
    pixels.forEach((v, i) => {
      image.data.set([v, v, v, 255], i * 4);
    });
    ctx.putImageData(image, 0, 0);
  }
  return canvas;
}

/** Ten bars, the predicted one and the true one coloured, so the doubt is visible at a glance. */
function probabilityBars(m: Misread): HTMLElement {
  const bars = el('div', 'lab-probs');
  m.probabilities.forEach((p, d) => {
    const bar = el('span', d === m.predicted ? 'wrong' : d === m.label ? 'right' : '');
    bar.style.height = `${Math.max(2, 100 * p)}%`;
    bars.append(bar);
  });
  return bars;
}

const keyOf = (model: ModelEntry) => `${model.name}/${model.version}`;
const nameOf = (model: ModelEntry) => (model.local ? model.name : `${model.name} v${model.version}`);

export class FailureLab {
  readonly state: FailureLabState = { running: false };
  private readonly runButton = el('button', '', 'Test on 10,000 MNIST images');
  private readonly progress = el('progress');
  private readonly status = el('p', 'status');
  private readonly matrix = el('div', 'lab-matrix');
  private readonly gallery = el('div', 'lab-gallery');
  private readonly worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'lab' });
  private misread: Misread[] = [];
  private request = 0;
  /** The tested model's name, for the status line. */
  private testing = '';

  constructor(
    root: HTMLElement,
    private readonly hooks: FailureLabHooks,
  ) {
    this.runButton.type = 'button';
    this.runButton.id = 'lab-run';
    this.progress.hidden = true;
    this.matrix.id = 'lab-matrix';
    this.gallery.id = 'lab-gallery';
    this.status.setAttribute('aria-live', 'polite');
    const tools = el('div', 'tools');
    tools.append(this.runButton, this.progress);
    root.append(
      el('h2', '', 'Where it fails'),
      el(
        'p',
        'sub',
        'The selected model on all 10,000 MNIST test images, in a worker. Rows: the true digit; columns: what the model read. Click a cell for those digits, and a digit to see it in the explainer.',
      ),
      tools,
      this.status,
      this.matrix,
      this.gallery,
    );
    this.runButton.addEventListener('click', () => void this.run());
    this.worker.onmessage = (event: MessageEvent<FromLab>) => this.receive(event.data);
  }

  /** The selected model changed: earlier results describe another model. */
  modelChanged(): void {
    const model = this.hooks.model();
    if (!this.state.model || (model && this.state.model === keyOf(model))) return;
    this.request++; // a reply still on its way is for the old model
    this.reset();
    this.status.textContent = model ? `Test ${nameOf(model)} to see where it fails.` : '';
  }

  private reset(): void {
    Object.assign(this.state, {
      running: false,
      model: undefined,
      confusion: undefined,
      perClass: undefined,
      accuracy: undefined,
      predictions: undefined,
      cell: undefined,
      error: undefined,
    });
    this.misread = [];
    this.matrix.replaceChildren();
    this.gallery.replaceChildren();
    this.progress.hidden = true;
    this.runButton.disabled = false;
  }

  private async run(): Promise<void> {
    const model = this.hooks.model();
    if (!model) return;
    this.reset();
    Object.assign(this.state, { running: true, model: keyOf(model) });
    this.testing = nameOf(model);
    this.runButton.disabled = true;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.status.textContent = `Testing ${this.testing}…`;
    const id = ++this.request;
    try {
      const bytes = await modelBytesToTransfer(model);
      const request: EvaluateRequest = { type: 'evaluate', id, bytes, count: TEST_IMAGES };
      this.worker.postMessage(request, [bytes.buffer]);
    } catch (error) {
      this.receive({ type: 'error', id, message: (error as Error).message });
    }
  }

  private receive(m: FromLab): void {
    if (m.id !== this.request) return;
    if (m.type === 'progress') {
      this.progress.max = m.total;
      this.progress.value = m.done;
      this.status.textContent = `Testing ${this.testing}: ${m.done.toLocaleString('en')} of ${m.total.toLocaleString('en')} images…`;
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
    const confusion = confusionMatrix(m.labels, m.predictions);
    this.misread = m.misread.sort((a, b) => (b.probabilities[b.predicted] ?? 0) - (a.probabilities[a.predicted] ?? 0));
    Object.assign(this.state, {
      confusion,
      perClass: perClassAccuracy(confusion),
      accuracy: accuracy(confusion),
      predictions: Array.from(m.predictions),
      seconds: m.seconds,
    });
    this.status.textContent = `${this.testing}: ${accuracy(confusion).toFixed(2)}% of ${m.labels.length.toLocaleString('en')} test images read right, ${m.misread.length} misread (${m.seconds.toFixed(1)} s in the worker).`;
    this.drawMatrix(confusion);
  }

  private drawMatrix(confusion: Confusion): void {
    const table = el('table', 'confusion');
    const head = table.createTHead().insertRow();
    head.append(el('th', 'corner', 'true↓ read→'));
    for (let d = 0; d < NUM_CLASSES; d++) head.append(el('th', '', String(d)));
    head.append(el('th', '', 'right'));
    const body = table.createTBody();
    const perClass = perClassAccuracy(confusion);
    confusion.forEach((row, label) => {
      const tr = body.insertRow();
      tr.append(el('th', '', String(label)));
      const rowTotal = row.reduce((a, b) => a + b, 0);
      row.forEach((count, predicted) => {
        const cell = tr.insertCell();
        const share = count / Math.max(1, rowTotal);
        if (label === predicted) {
          cell.className = 'hit';
          cell.textContent = String(count);
          cell.style.setProperty('--share', String(share));
          return;
        }
        if (count === 0) return;
        // Off the diagonal even a few misreads matter: shade by the square root so 1 of 1,000 still shows.
        cell.className = 'miss';
        cell.style.setProperty('--share', String(Math.min(1, Math.sqrt(share * 20))));
        const button = el('button', '', String(count));
        button.type = 'button';
        button.dataset.label = String(label);
        button.dataset.predicted = String(predicted);
        button.title = `${count} ${label}${count === 1 ? '' : 's'} read as ${predicted}`;
        button.addEventListener('click', () => this.showCell(label, predicted));
        cell.append(button);
      });
      tr.insertCell().textContent = `${(perClass[label] as number).toFixed(1)}%`;
    });
    this.matrix.replaceChildren(table);
  }

  private showCell(label: number, predicted: number): void {
    const digits = this.misread.filter((m) => m.label === label && m.predicted === predicted);
    const shown = digits.slice(0, GALLERY_MAX);
    this.state.cell = { label, predicted, shown: shown.length };
    this.matrix.querySelectorAll('button').forEach((b) => {
      b.classList.remove('selected');
    });
    this.matrix
      .querySelector(`button[data-label="${label}"][data-predicted="${predicted}"]`)
      ?.classList.add('selected');
    const heading = el(
      'h3',
      '',
      `${digits.length} × a ${label} read as ${predicted}${digits.length > shown.length ? ` (the ${shown.length} most confident)` : ''}`,
    );
    const items = shown.map((m) => {
      const item = el('button', 'lab-digit');
      item.type = 'button';
      item.dataset.index = String(m.index);
      const p = (d: number) => `${(100 * (m.probabilities[d] as number)).toFixed(0)}%`;
      item.title = `test image #${m.index}: ${m.probabilities.map((v, d) => `${d}: ${(100 * v).toFixed(1)}%`).join(', ')}`;
      item.append(
        thumbnail(m.pixels),
        probabilityBars(m),
        el('span', '', `${predicted} ${p(predicted)} · ${label} ${p(label)}`),
      );
      item.addEventListener('click', () => {
        this.state.picked = m.index;
        this.hooks.pick(Float32Array.from(m.pixels, (v) => v / 255));
      });
      return item;
    });
    const list = el('div', 'lab-digits');
    list.append(...items);
    this.gallery.replaceChildren(heading, list);
  }
}
