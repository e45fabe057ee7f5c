/**
 * "Teach it your handwriting" on the draw page: draw a digit, label it, repeat (5–50); Fine-tune runs a
 * few training steps on them mixed with MNIST (in a worker), starting from the served model; shows the
 * answers on your digits and the MNIST test accuracy before and after; keeps the result in IndexedDB and
 * offers it for download. Self-contained: index.html's teach <section> loads this script.
 */
import { IMAGE_SIDE, NUM_CLASSES } from '../../../core/contract.ts';
import { BlankImageError, preprocessRgba } from '../../../core/digits/digit.ts';
import { DrawingPad } from '../drawing.ts';
import { saveLocalModel } from '../local-models.ts';
import { listServedModels } from '../models.ts';
import { type Published, publishModel } from '../publish.ts';
import type { Sample } from './finetune.ts';
import { loadSavedModel, saveModel } from './store.ts';
import type { TeachReply, TeachRequest } from './worker.ts';

const MAX_SAMPLES = 50;
const MIN_SAMPLES = 5;
const MNIST_TEST_IMAGES = 1000;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export interface TeachState {
  samples: number;
  running: boolean;
  model?: string;
  before?: { answers: number[]; mnistAccuracy: number };
  after?: { answers: number[]; mnistAccuracy: number };
  saved: boolean;
  error?: string;
  /** The version the server made of the fine-tuned model ("Publish to the server"). */
  published?: Published;
}

function thumbnail(pixels: Float32Array): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = IMAGE_SIDE;
  canvas.height = IMAGE_SIDE;
  const ctx = canvas.getContext('2d');
  if (ctx) {
    const image = ctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
    pixels.forEach((v, i) => {
      const g = Math.round(255 * v);
      image.data.set([g, g, g, 255], i * 4);
    });
    ctx.putImageData(image, 0, 0);
  }
  return canvas;
}

/**
 * Served models that can be fine-tuned here: ours, BatchNorm-free (see weights.ts), with fp32 weights (an
 * fp16 or int8 variant has no float weights to start from: export writes its precision into the metadata).
 */
async function trainableModels(): Promise<{ label: string; url: string }[]> {
  const models = await listServedModels().catch(() => []);
  const noBatchNorm = /^(mlp|cnn|cnn3|inception|resnet|resnet-scaled|resnet-convshortcut):/;
  return models.flatMap((m) => {
    const v = m.versions
      .filter(
        (x) =>
          x.ready && noBatchNorm.test(x.metadata?.architecture ?? '') && (x.metadata?.precision ?? 'fp32') === 'fp32',
      )
      .at(-1);
    return v ? [{ label: `${m.name} v${v.version}`, url: `/models/${m.name}/${v.version}/model.onnx` }] : [];
  });
}

export function initTeach(): void {
  const root = document.getElementById('teach');
  if (!root) return;
  const state: TeachState = { samples: 0, running: false, saved: false };
  (window as unknown as { teach: TeachState }).teach = state;
  const samples: Sample[] = [];
  const list = $<HTMLDivElement>('teach-samples');
  const status = $<HTMLParagraphElement>('teach-status');
  const label = $<HTMLSelectElement>('teach-label');
  const modelSelect = $<HTMLSelectElement>('teach-model');
  const addButton = $<HTMLButtonElement>('teach-add');
  const tuneButton = $<HTMLButtonElement>('teach-tune');
  const results = $<HTMLDivElement>('teach-results');
  const download = $<HTMLAnchorElement>('teach-download');
  const publishButton = $<HTMLButtonElement>('teach-publish');
  let tuned: { bytes: Uint8Array; name: string } | undefined;
  // The fine-tuned model as the next version of "<model>-tuned" on the server (serve --allow-upload).
  publishButton.addEventListener('click', async () => {
    if (!tuned) return;
    publishButton.disabled = true;
    try {
      state.published = await publishModel(`${tuned.name}-tuned`, tuned.bytes);
      status.textContent = `Published: the server serves it as ${state.published.model} v${state.published.version}.`;
    } catch (error) {
      status.textContent = `Not published: ${(error as Error).message}`;
    } finally {
      publishButton.disabled = false;
    }
  });
  label.replaceChildren(...Array.from({ length: NUM_CLASSES }, (_, d) => new Option(String(d), String(d))));
  const pad = new DrawingPad($<HTMLCanvasElement>('teach-pad'), { change: () => {}, settle: () => {} });

  const refresh = () => {
    state.samples = samples.length;
    tuneButton.disabled = state.running || samples.length < MIN_SAMPLES || modelSelect.options.length === 0;
    addButton.disabled = state.running || samples.length >= MAX_SAMPLES;
    list.querySelectorAll<HTMLButtonElement>('button.remove').forEach((b) => {
      b.disabled = state.running;
    });
    if (!state.running)
      status.textContent =
        samples.length < MIN_SAMPLES
          ? `${samples.length} digit${samples.length === 1 ? '' : 's'}: draw and add at least ${MIN_SAMPLES}.`
          : `${samples.length} digits. Fine-tune when ready (up to ${MAX_SAMPLES}).`;
  };
  const offer = (bytes: Uint8Array, name: string) => {
    download.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
    download.download = `${name}-fine-tuned.onnx`;
    download.hidden = false;
    tuned = { bytes, name };
    publishButton.hidden = false;
  };

  addButton.addEventListener('click', () => {
    const { rgba, width, height } = pad.pixels();
    try {
      const pixels = preprocessRgba(rgba, width, height);
      const sample: Sample = { pixels, label: Number(label.value) };
      samples.push(sample);
      const item = document.createElement('figure');
      item.append(thumbnail(pixels));
      const caption = document.createElement('figcaption');
      caption.textContent = label.value;
      // A digit added by mistake (wrong label, a slip of the pen) must not be taught: × takes it out.
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'remove';
      remove.textContent = '×';
      remove.title = `Remove this ${label.value}`;
      remove.setAttribute('aria-label', `Remove this ${label.value}`);
      remove.addEventListener('click', () => {
        if (state.running) return;
        samples.splice(samples.indexOf(sample), 1);
        item.remove();
        refresh();
      });
      item.append(caption, remove);
      list.append(item);
      pad.clear();
    } catch (error) {
      if (!(error instanceof BlankImageError)) throw error;
      status.textContent = 'Draw a digit first.';
      return;
    }
    refresh();
  });

  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'teach' });
  worker.onmessage = async (event: MessageEvent<TeachReply>) => {
    const m = event.data;
    if (m.type === 'status') {
      status.textContent = m.text;
      return;
    }
    state.running = false;
    if (m.type === 'error') {
      state.error = m.message;
      status.textContent = `Error: ${m.message}`;
      refresh();
      status.textContent = `Error: ${m.message}`;
      return;
    }
    Object.assign(state, { model: m.model, before: m.before, after: m.after });
    const rows = samples
      .map(
        (s, i) =>
          `<tr><td>${s.label}</td><td>${m.before.answers[i]}</td><td class="${m.after.answers[i] === s.label ? 'ok' : 'bad'}">${m.after.answers[i]}</td></tr>`,
      )
      .join('');
    const right = (answers: number[]) => answers.filter((a, i) => a === samples[i]?.label).length;
    results.innerHTML = `<p>Your digits: <strong>${right(m.before.answers)}/${samples.length}</strong> read right before, <strong>${right(m.after.answers)}/${samples.length}</strong> after. MNIST test (${MNIST_TEST_IMAGES} images): ${m.before.mnistAccuracy.toFixed(1)}% before, ${m.after.mnistAccuracy.toFixed(1)}% after.</p><table><thead><tr><th>you said</th><th>before</th><th>after</th></tr></thead><tbody>${rows}</tbody></table>`;
    offer(m.bytes, m.model);
    refresh();
    status.textContent = `Fine-tuned ${m.model} (validated: max |Δlogit| ${m.maxLogitDifference.toExponential(1)}); kept in this browser and selected above.`;
    try {
      await saveModel({ bytes: m.bytes, model: m.model, samples: samples.length, savedAt: new Date().toISOString() });
      // The draw pad's model list gets it at once (local-models.ts announces it to the page).
      await saveLocalModel({
        name: `fine-tuned ${m.model}`,
        bytes: m.bytes,
        accuracy: m.after.mnistAccuracy,
        savedAt: Date.now(),
      });
      state.saved = true;
    } catch (error) {
      status.textContent += ` (not saved: ${(error as Error).message})`;
    }
  };

  tuneButton.addEventListener('click', async () => {
    state.running = true;
    state.error = undefined;
    refresh();
    status.textContent = 'Fetching the served model…';
    try {
      const response = await fetch(modelSelect.value);
      if (!response.ok) throw new Error(`model file: HTTP ${response.status}`);
      const served = new Uint8Array(await response.arrayBuffer());
      const request: TeachRequest = {
        type: 'finetune',
        served,
        samples: samples.map((s) => ({ pixels: s.pixels.slice(), label: s.label })),
        mnistTest: MNIST_TEST_IMAGES,
      };
      worker.postMessage(request, [served.buffer]);
    } catch (error) {
      state.running = false;
      state.error = (error as Error).message;
      refresh();
      status.textContent = `Error: ${state.error}`;
    }
  });

  void (async () => {
    const models = await trainableModels().catch(() => []);
    modelSelect.replaceChildren(...models.map((m) => new Option(m.label, m.url)));
    refresh();
    if (models.length === 0) status.textContent = 'No served model without BatchNorm to fine-tune (e.g. cnn).';
    const saved = await loadSavedModel().catch(() => undefined);
    if (saved) {
      offer(saved.bytes, saved.model);
      state.saved = true;
      results.textContent = `A fine-tuned ${saved.model} (${saved.samples} digits, ${saved.savedAt.slice(0, 16).replace('T', ' ')}) is kept in this browser.`;
    }
  })();
}

initTeach();
