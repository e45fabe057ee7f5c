/**
 * The demo: draw (or a photo) → MNIST preprocessing (shared with the server) → one model or all, in the
 * browser or on the server; the explainer (./explainer) shows every layer of the selected model.
 */
import { IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES } from '../../core/contract.ts';
import { BlankImageError, preprocessRgba } from '../../core/digits/digit.ts';
import { DrawingPad } from './drawing.ts';
import { Explainer, type ExplainState } from './explainer/panel.ts';
import { AttackPanel, type AttackState } from './lab/attack-panel.ts';
import { EmbeddingPanel, type EmbeddingState } from './lab/embedding-panel.ts';
import { GradientsClient } from './lab/gradients-client.ts';
import { FailureLab, type FailureLabState } from './lab/panel.ts';
import { WhyPanel, type WhyState } from './lab/why-panel.ts';
import { loadLocalModels, onLocalModel } from './local-models.ts';
import {
  type Backend,
  chooseBackend,
  fetchModels,
  localEntry,
  type ModelEntry,
  runInBrowser,
  runOnServer,
} from './models.ts';
import { readPhoto } from './photo.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLParagraphElement>('status');
const digit = $<HTMLOutputElement>('digit');
const bars = $<HTMLDivElement>('bars');
const select = $<HTMLSelectElement>('model');
const serverMode = $<HTMLInputElement>('server');
const allMode = $<HTMLInputElement>('all');
const table = $<HTMLDivElement>('table');
const preview = $<HTMLCanvasElement>('preview');
const hint = $<HTMLDivElement>('hint');
const explainer = new Explainer($<HTMLElement>('explainer'));
const gradients = new GradientsClient();
const why = new WhyPanel($<HTMLElement>('why'), gradients, $<HTMLElement>('pad').parentElement as HTMLElement);

const barEls = Array.from({ length: NUM_CLASSES }, (_, d) => {
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.innerHTML = `<span>${d}</span>`;
  bars.append(bar);
  return bar;
});

let models: ModelEntry[] = [];
let backend: Backend = 'wasm';

/** What tests and curious users can read back. */
interface DemoState {
  ready: boolean;
  backend: Backend;
  prediction?: number;
  probabilities?: number[];
  mode?: 'browser' | 'server';
  all?: { model: string; prediction: number }[];
  runs: number;
  /**
   * Pad changes settled so far (strokes ended, clears, undos, photos) and how many of them the last finished
   * reading had seen: equal once the reading of the pad as it now is has landed (tests wait on it, not on time).
   */
  strokesEnded: number;
  strokesRead: number;
  /** The 28×28 image (raw [0, 1]) the model last read. */
  input?: number[];
  explain: ExplainState;
  why: WhyState;
  attack?: AttackState;
  embedding?: EmbeddingState;
  lab?: FailureLabState;
}
const state: DemoState = {
  ready: false,
  backend,
  runs: 0,
  strokesEnded: 0,
  strokesRead: 0,
  explain: explainer.state,
  why: why.state,
};
(window as unknown as { demo: DemoState }).demo = state;

function show(probabilities: number[] | undefined): void {
  bars.classList.toggle('empty', !probabilities);
  if (!probabilities) {
    digit.textContent = '';
    for (const b of barEls) {
      b.style.height = '0%';
      b.classList.remove('top');
    }
    return;
  }
  const top = probabilities.indexOf(Math.max(...probabilities));
  digit.textContent = String(top);
  barEls.forEach((b, d) => {
    b.style.height = `${Math.max(1, 100 * (probabilities[d] as number))}%`;
    b.classList.toggle('top', d === top);
    b.title = `${d}: ${(100 * (probabilities[d] as number)).toFixed(1)}%`;
  });
}

function drawPreview(input: Float32Array | undefined): void {
  const ctx = preview.getContext('2d');
  if (!ctx) return;
  const image = ctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = Math.round(255 * (input?.[i] ?? 0));
    image.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}

async function predictOne(model: ModelEntry, input: Float32Array): Promise<{ probabilities: number[]; label: string }> {
  const start = performance.now();
  if (serverMode.checked && !model.local) {
    const { probabilities, serverMs } = await runOnServer(model, input);
    return {
      probabilities,
      label: `server: ${(performance.now() - start).toFixed(1)} ms round trip (${serverMs.toFixed(2)} ms in the server)`,
    };
  }
  const probabilities = await runInBrowser(model, backend, input);
  const where = model.local && serverMode.checked ? ' (this model is not on the server)' : '';
  return { probabilities, label: `${backend} in the browser${where}: ${(performance.now() - start).toFixed(2)} ms` };
}

/**
 * An MNIST test image picked in the failure gallery: read exactly as it is (already 28×28, centred), not
 * through the pad's preprocessing; cleared by the next stroke, undo, clear or photo.
 */
let exactInput: Float32Array | undefined;
/** The pad shows a photo: a blank result means the photo had no digit, not that the pad is empty. */
let showingPhoto = false;

let busy = false;
/** A run queued while one is in flight (coalesced: the latest pixels, explained if any request asked). */
let again: { explain: boolean } | undefined;

/** Read the pad with the selected model (and all models); `explain`: redraw the explainer too (after a stroke). */
async function predict(explain = true): Promise<void> {
  if (busy) {
    again = { explain: explain || (again?.explain ?? false) };
    return;
  }
  busy = true;
  const strokesSeen = state.strokesEnded;
  try {
    const { rgba, width, height } = pad.pixels();
    let input: Float32Array;
    try {
      input = exactInput ?? preprocessRgba(rgba, width, height);
    } catch (error) {
      if (!(error instanceof BlankImageError)) throw error;
      const blank = showingPhoto
        ? 'No ink found in that photo: a dark digit on light paper, filling most of the frame, reads best.'
        : 'Draw a digit.';
      drawPreview(undefined);
      show(undefined);
      explainer.clear();
      why.clear();
      embedding.place(undefined);
      state.prediction = undefined;
      state.input = undefined;
      status.textContent = models.length ? blank : status.textContent;
      table.replaceChildren();
      return;
    }
    drawPreview(input);
    const model = models.find((m) => `${m.name}/${m.version}` === select.value);
    if (!model) return;
    const main = await predictOne(model, input);
    show(main.probabilities);
    status.textContent = main.label;
    state.prediction = main.probabilities.indexOf(Math.max(...main.probabilities));
    state.probabilities = main.probabilities;
    state.mode = serverMode.checked ? 'server' : 'browser';
    state.input = Array.from(input);
    // Always in the browser: the layers' values come from onnxruntime-web running the explain variant.
    if (explain) {
      // The drawing to lay the maps over: the pad's own strokes, not a photo.
      const padView = showingPhoto ? undefined : { canvas: $<HTMLCanvasElement>('pad'), ...pad.pixels() };
      why.update(model, input, state.prediction, padView);
      embedding.place(input);
      await explainer.update(model, backend, input);
    }
    if (allMode.checked) {
      const rows = await Promise.all(models.map(async (m) => ({ m, r: await predictOne(m, input) })));
      state.all = rows.map(({ m, r }) => ({
        model: m.name,
        prediction: r.probabilities.indexOf(Math.max(...r.probabilities)),
      }));
      // Built from nodes, not HTML: a model's label carries its metadata, which whoever published it wrote.
      table.replaceChildren(
        allModelsTable(rows.map(({ m, r }) => ({ label: m.label, probabilities: r.probabilities }))),
      );
    }
    state.runs++;
  } catch (error) {
    status.textContent = `Error: ${(error as Error).message}`;
  } finally {
    busy = false;
    state.strokesRead = strokesSeen;
    if (again) {
      const queued = again;
      again = undefined;
      void predict(queued.explain);
    }
  }
}

// Live while drawing (at most every 100 ms), and always when a stroke ends.
let last = 0;
const pad = new DrawingPad($<HTMLCanvasElement>('pad'), {
  change: () => {
    hint.hidden = true;
    why.hideOverlay();
    exactInput = undefined;
    showingPhoto = false;
    const now = performance.now();
    if (now - last > 100) {
      last = now;
      void predict(false);
    }
  },
  settle: () => {
    state.strokesEnded++;
    hint.hidden = !pad.empty;
    void predict();
  },
});

const photoInput = $<HTMLInputElement>('photo');
photoInput.addEventListener('change', async () => {
  const file = photoInput.files?.[0];
  photoInput.value = ''; // choosing the same file again still fires
  if (!file) return;
  try {
    const photo = await readPhoto(file);
    exactInput = undefined;
    showingPhoto = true;
    pad.showPhoto(photo);
  } catch {
    status.textContent = 'Could not read that image: choose a photo (JPEG, PNG, WebP…).';
  }
});

/** Undo and clear leave the pad's own strokes: no exact image, no photo. */
const padOnly = (action: () => void) => () => {
  exactInput = undefined;
  showingPhoto = false;
  action();
};
const undo = padOnly(() => pad.undo());
const clear = padOnly(() => pad.clear());
$<HTMLButtonElement>('undo').addEventListener('click', undo);
$<HTMLButtonElement>('clear').addEventListener('click', clear);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') clear();
  if ((e.ctrlKey || e.metaKey) && e.key === 'z') undo();
});

/** Show a 28×28 MNIST image (raw [0, 1]) on the pad and read it exactly as it is. */
async function showDigit(pixels: Float32Array): Promise<void> {
  const rgba = new Uint8ClampedArray(IMAGE_PIXELS * 4);
  pixels.forEach((v, i) => {
    const g = Math.round(255 * v);
    rgba.set([g, g, g, 255], i * 4);
  });
  const bitmap = await createImageBitmap(new ImageData(rgba, IMAGE_SIDE, IMAGE_SIDE));
  exactInput = pixels;
  showingPhoto = false;
  hint.hidden = true;
  pad.showPhoto({ bitmap, rgba, width: IMAGE_SIDE, height: IMAGE_SIDE });
  $<HTMLElement>('pad').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

const selectedModel = () => models.find((m) => `${m.name}/${m.version}` === select.value);
const attack = new AttackPanel($<HTMLElement>('attack'), gradients, {
  current() {
    const model = selectedModel();
    if (!model || !state.input || state.prediction === undefined) return undefined;
    return { model, input: Float32Array.from(state.input), prediction: state.prediction };
  },
  pick: (pixels) => void showDigit(pixels),
});
state.attack = attack.state;
const embedding = new EmbeddingPanel($<HTMLElement>('embedding'), selectedModel);
state.embedding = embedding.state;
const lab = new FailureLab($<HTMLElement>('lab'), { model: selectedModel, pick: (pixels) => void showDigit(pixels) });
state.lab = lab.state;

/** Refill the model list, keeping the selection (or selecting `chosen`). */
function listModels(chosen = select.value): void {
  select.replaceChildren(...models.map((m) => new Option(m.label, `${m.name}/${m.version}`)));
  if (models.some((m) => `${m.name}/${m.version}` === chosen)) select.value = chosen;
  lab.modelChanged();
  embedding.modelChanged();
  attack.modelChanged();
}

// A model trained on /train or fine-tuned below joins the list at once, and is selected: that is the payoff.
onLocalModel((saved) => {
  const entry = localEntry(saved);
  models = [...models.filter((m) => m.name !== entry.name), entry];
  listModels(`${entry.name}/${entry.version}`);
  status.textContent = `Now reading with ${entry.label}.`;
  void predict();
});
for (const el of [select, serverMode]) el.addEventListener('change', () => void predict());
select.addEventListener('change', () => {
  lab.modelChanged();
  embedding.modelChanged();
  attack.modelChanged();
});
allMode.addEventListener('change', () => {
  table.hidden = !allMode.checked;
  void predict();
});

async function start(): Promise<void> {
  try {
    const [served, local, chosen] = await Promise.all([
      fetchModels(),
      loadLocalModels().catch(() => []),
      chooseBackend(),
    ]);
    backend = chosen;
    models = [...served, ...local.map(localEntry)];
    state.backend = backend;
    if (models.length === 0) {
      status.textContent = 'No model is served yet: train and export one (npm run train, npm run export).';
      return;
    }
    // ?model=name/version preselects one (the /train page links to its new model this way).
    listModels(new URLSearchParams(location.search).get('model') ?? '');
    const first = selectedModel() ?? (models[0] as ModelEntry);
    await runInBrowser(first, backend, new Float32Array(IMAGE_PIXELS)); // warm up: session creation takes the longest
    status.textContent = `Ready (${backend}). Draw a digit.`;
    state.ready = true;
  } catch (error) {
    status.textContent = `Error: ${(error as Error).message}`;
  }
}
void start();

/** The "All models" table: one row per model with its reading and confidence, every cell set as text. */
function allModelsTable(rows: { label: string; probabilities: number[] }[]): HTMLTableElement {
  const cell = (tag: 'td' | 'th', text: string, strong = false) => {
    const el = document.createElement(tag);
    if (strong) el.append(Object.assign(document.createElement('strong'), { textContent: text }));
    else el.textContent = text;
    return el;
  };
  const tr = (...cells: HTMLElement[]) => {
    const row = document.createElement('tr');
    row.append(...cells);
    return row;
  };
  const table = document.createElement('table');
  const head = table.createTHead();
  head.append(tr(cell('th', 'model'), cell('th', 'reads'), cell('th', 'confidence')));
  const body = table.createTBody();
  for (const { label, probabilities } of rows) {
    const top = probabilities.indexOf(Math.max(...probabilities));
    body.append(
      tr(
        cell('td', label),
        cell('td', String(top), true),
        cell('td', `${(100 * (probabilities[top] as number)).toFixed(1)}%`),
      ),
    );
  }
  return table;
}
