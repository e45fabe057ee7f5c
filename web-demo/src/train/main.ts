/** The /train page: settings → a training worker → a live chart, per-epoch table, test accuracy and model.onnx. */
import { BlankImageError, preprocessRgba } from '../../../core/digits/digit.ts';
import { MODEL_NAMES, type ModelName } from '../../../core/model/zoo/index.ts';
import { DrawingPad } from '../drawing.ts';
import { saveLocalModel } from '../local-models.ts';
import { type Published, publishModel } from '../publish.ts';
import { TrainingChart } from './chart.ts';
import { PRESETS, type PresetName } from './presets.ts';
import type { BrowserRecipe, FromWorker, ToWorker, TrainRequest } from './protocol.ts';
import { BROWSER_RECIPES } from './recipes.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('settings');
const modelSelect = $<HTMLSelectElement>('model');
const recipeSelect = $<HTMLSelectElement>('recipe');
const numberField = (id: string) => $<HTMLInputElement>(id);
const [epochsField, trainCountField, batchField, lrField, testCountField] = [
  'epochs',
  'train-count',
  'batch',
  'lr',
  'test-count',
].map(numberField) as [HTMLInputElement, HTMLInputElement, HTMLInputElement, HTMLInputElement, HTMLInputElement];
const trainButton = $<HTMLButtonElement>('train');
const stopButton = $<HTMLButtonElement>('stop');
const backendLine = $<HTMLParagraphElement>('backend');
const progress = $<HTMLParagraphElement>('progress');
const epochRows = $<HTMLTableElement>('epochs-table').tBodies[0] as HTMLTableSectionElement;
const result = $<HTMLParagraphElement>('result');
const download = $<HTMLAnchorElement>('download');
const publishForm = $<HTMLFormElement>('publish-form');
const publishName = $<HTMLInputElement>('publish-name');
const publishedLine = $<HTMLSpanElement>('published');
const useLink = $<HTMLAnchorElement>('use');
const savedLine = $<HTMLParagraphElement>('saved');
const presetNote = $<HTMLParagraphElement>('preset-note');
const digit = $<HTMLOutputElement>('digit');
const chart = new TrainingChart($<HTMLCanvasElement>('chart'));

/** What tests and curious users can read back. */
interface TrainPageState {
  running: boolean;
  backend?: string;
  note?: string;
  batches: number;
  epochs: { epoch: number; testAccuracy: number; imagesPerSecond: number }[];
  testAccuracy?: number;
  imagesPerSecond?: number;
  done: boolean;
  error?: string;
  /** Strokes drawn on the pad (the main thread handled them). */
  strokes: number;
  prediction?: number;
  /** The version the server made of the trained model ("Publish to the server"). */
  published?: Published;
  /** The draw page's name for the trained model, once it is kept in this browser. */
  savedAs?: string;
}
const state: TrainPageState = { running: false, batches: 0, epochs: [], done: false, strokes: 0 };
(window as unknown as { trainPage: TrainPageState }).trainPage = state;

modelSelect.replaceChildren(...MODEL_NAMES.map((name) => new Option(name, name)));
recipeSelect.replaceChildren(...Object.entries(BROWSER_RECIPES).map(([key, recipe]) => new Option(recipe.label, key)));
// Picking a recipe fills in its batch size and learning rate (both stay editable).
recipeSelect.addEventListener('change', () => {
  const { config } = BROWSER_RECIPES[recipeSelect.value as BrowserRecipe];
  batchField.value = String(config.batchSize);
  lrField.value = String(config.lr);
});

function applyPreset(name: PresetName): void {
  const { settings, note } = PRESETS[name];
  modelSelect.value = settings.model;
  recipeSelect.value = settings.recipe;
  epochsField.value = String(settings.epochs);
  trainCountField.value = String(settings.trainCount);
  batchField.value = String(settings.batchSize);
  lrField.value = String(settings.lr);
  testCountField.value = String(settings.testCount);
  presetNote.textContent = note;
}
applyPreset('quick');
form.querySelectorAll<HTMLButtonElement>('[data-preset]').forEach((button) => {
  button.addEventListener('click', () => applyPreset(button.dataset.preset as PresetName));
});

// Pages may preset fields from the query (?model=cnn&recipe=…&batch=16&lr=0.005&ep=wasm&threads=1).
const query = new URLSearchParams(location.search);
const presets: [string, HTMLInputElement | HTMLSelectElement][] = [
  ['model', modelSelect],
  ['recipe', recipeSelect],
  ['epochs', epochsField],
  ['train', trainCountField],
  ['batch', batchField],
  ['lr', lrField],
  ['test', testCountField],
];
for (const [key, field] of presets) {
  const value = query.get(key);
  if (value === null) continue;
  field.value = value;
  if (key === 'recipe') field.dispatchEvent(new Event('change'));
}

// The name tells the bundle it is the trainer, not one of ORT's wasm threads (which load the same script).
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'trainer' });
const send = (message: ToWorker) => worker.postMessage(message);

function setRunning(running: boolean): void {
  state.running = running;
  trainButton.disabled = running;
  stopButton.disabled = !running;
  form.querySelectorAll<HTMLInputElement>('input, select, [data-preset]').forEach((field) => {
    field.disabled = running;
  });
}

let downloadUrl: string | undefined;
/** The last trained model's bytes, for "Publish to the server". */
let trained: Uint8Array | undefined;

publishForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!trained) return;
  publishedLine.textContent = 'Publishing…';
  try {
    const published = await publishModel(publishName.value.trim(), trained);
    state.published = published;
    publishedLine.replaceChildren(
      `Serving as ${published.model} v${published.version}: `,
      Object.assign(document.createElement('a'), {
        href: `/?model=${encodeURIComponent(`${published.model}/${published.version}`)}`,
        textContent: 'read digits with it',
      }),
    );
  } catch (error) {
    publishedLine.textContent = `Not published: ${(error as Error).message}`;
  }
});

worker.onmessage = (event: MessageEvent<FromWorker>) => {
  const m = event.data;
  switch (m.type) {
    case 'status':
      progress.textContent = m.text;
      break;
    case 'backend':
      state.backend = m.backend;
      state.note = m.note;
      backendLine.textContent = `Backend: ${m.note}`;
      break;
    case 'batch':
      state.batches++;
      chart.addBatch(m.loss, m.accuracy);
      progress.textContent = `epoch ${m.epoch}, batch ${m.batch}/${m.batches}: loss ${m.loss.toFixed(3)}, ${Math.round(m.imagesPerSecond).toLocaleString('en')} images/s`;
      break;
    case 'epoch': {
      state.epochs.push({ epoch: m.epoch, testAccuracy: m.testAccuracy, imagesPerSecond: m.imagesPerSecond });
      chart.addEpoch(m.testAccuracy);
      const row = epochRows.insertRow();
      for (const text of [
        String(m.epoch),
        m.trainLoss.toFixed(4),
        `${m.trainAccuracy.toFixed(2)}%`,
        `${m.testAccuracy.toFixed(2)}%`,
        Math.round(m.imagesPerSecond).toLocaleString('en'),
      ])
        row.insertCell().textContent = text;
      break;
    }
    case 'done': {
      state.testAccuracy = m.testAccuracy;
      state.imagesPerSecond = m.imagesPerSecond;
      result.textContent = `test accuracy: ${m.testAccuracy.toFixed(1)}%`;
      progress.textContent = `${m.stopped ? 'Stopped' : 'Done'} after ${m.steps} steps, ${Math.round(m.imagesPerSecond).toLocaleString('en')} images/s; on ${m.testCount.toLocaleString('en')} held-out MNIST test images. The deployable model matches the training graph (max |Δlogit| ${m.maxLogitDifference.toExponential(1)}, ${m.disagreements} different answers).`;
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([m.model as BlobPart], { type: 'application/octet-stream' }));
      download.href = downloadUrl;
      download.hidden = false;
      trained = m.model as Uint8Array;
      publishForm.hidden = false;
      publishedLine.textContent = '';
      state.done = true;
      setRunning(false);
      predict();
      void keep(m.model, m.testAccuracy);
      break;
    }
    case 'prediction': {
      const top = m.probabilities.indexOf(Math.max(...m.probabilities));
      digit.textContent = String(top);
      state.prediction = top;
      break;
    }
    case 'error':
      state.error = m.message;
      progress.textContent = `Error: ${m.message}`;
      setRunning(false);
      break;
  }
};

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  const request: TrainRequest = {
    model: modelSelect.value as ModelName,
    recipe: recipeSelect.value as BrowserRecipe,
    epochs: epochsField.valueAsNumber,
    trainCount: trainCountField.valueAsNumber,
    testCount: testCountField.valueAsNumber,
    batchSize: batchField.valueAsNumber,
    lr: lrField.valueAsNumber,
    seed: Number(query.get('seed') ?? 0),
    backend: (['wasm', 'webgpu'].includes(query.get('ep') ?? '') ? query.get('ep') : 'auto') as TrainRequest['backend'],
    threads: Number(query.get('threads') ?? 0),
  };
  Object.assign(state, { batches: 0, epochs: [], done: false, error: undefined, testAccuracy: undefined });
  epochRows.replaceChildren();
  result.textContent = '';
  download.hidden = true;
  publishForm.hidden = true;
  useLink.hidden = true;
  savedLine.textContent = '';
  state.savedAs = undefined;
  chart.reset(request.epochs * Math.ceil(request.trainCount / request.batchSize));
  setRunning(true);
  send({ type: 'train', request });
});
/** Keep the model in this browser, where the draw page lists it (and link there with it selected). */
async function keep(bytes: Uint8Array, accuracy: number): Promise<void> {
  const name = `trained ${modelSelect.value}`;
  const savedAt = Date.now();
  try {
    await saveLocalModel({ name, bytes, accuracy, savedAt });
  } catch (error) {
    savedLine.textContent = `Not kept in this browser (${(error as Error).message}): download it instead.`;
    return;
  }
  useLink.href = `/?model=${encodeURIComponent(`${name}/${savedAt}`)}`;
  useLink.hidden = false;
  state.savedAs = `${name}/${savedAt}`;
  savedLine.textContent = `Kept in this browser as “${name}”: the draw page lists it.`;
}

stopButton.addEventListener('click', () => {
  send({ type: 'stop' });
  progress.textContent = 'Stopping after this batch…';
});

// The pad: drawing works during training (the worker has the CPU-heavy part); the final model reads it.
function predict(): void {
  if (!state.done) return;
  const { rgba, width, height } = pad.pixels();
  try {
    send({ type: 'predict', pixels: preprocessRgba(rgba, width, height) });
  } catch (error) {
    if (!(error instanceof BlankImageError)) throw error;
    digit.textContent = '–';
  }
}
const pad = new DrawingPad($<HTMLCanvasElement>('pad'), {
  change: () => {},
  settle: () => {
    state.strokes++;
    predict();
  },
});
$<HTMLButtonElement>('clear').addEventListener('click', () => {
  pad.clear();
  digit.textContent = '–';
});
