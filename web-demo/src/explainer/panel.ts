/**
 * The explainer panel: after each stroke, every layer's activations for the selected model as heat maps,
 * laid out as the network is wired — one column of layers, Inception modules and residual blocks as
 * branches side by side. Hovering a cell of a feature map lights up its receptive field on the 28×28
 * input and shows the kernel of that channel.
 */

import { IMAGE_PIXELS, IMAGE_SIDE } from '../../../core/contract.ts';
import type { ExplainLayer } from '../../../core/deploy/explain.ts';
import type { ExplainStage } from '../../../core/deploy/explain-structure.ts';
import { cellField, type PixelBox } from '../../../core/deploy/receptive-field.ts';
import type { Backend, ModelEntry } from '../models.ts';
import { type Cell, cellAt, cellOrigin, drawHeatmap, type Tiling, tiling, valueIndex } from './heatmap.ts';
import { type Activation, type ExplainableModel, explainable } from './model.ts';

/** What tests and curious users can read back (`window.demo.explain`). */
export interface ExplainState {
  model?: string;
  runs: number;
  layers: { output: string; label: string; op: string; dims: number[]; values: Float32Array }[];
  hover?: { output: string; channel: number; y: number; x: number; value: number; field?: PixelBox; kernel?: number[] };
}

interface LayerView {
  layer: ExplainLayer;
  canvas: HTMLCanvasElement;
  detail: HTMLElement;
  /** Most tiles a row, from the width it has (a branch is narrower than the column). */
  maxCols: number;
  tiling?: Tiling;
  activation?: Activation;
}

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = '') => {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
};

const labelOf = (layer: ExplainLayer) => layer.module ?? layer.op.toLowerCase();
/** Inside a block named after its modules (`incep1`), a layer's label without that prefix (`branch5x5_2`). */
const shortLabel = (layer: ExplainLayer, block: string) =>
  block && labelOf(layer).startsWith(`${block}.`) ? labelOf(layer).slice(block.length + 1) : labelOf(layer);

/** Tiles a row for a full-width layer: up to 16, in rows of equal length. */
const columnCols = (channels: number) => Math.ceil(channels / Math.ceil(channels / 16));

export class Explainer {
  readonly state: ExplainState = { runs: 0, layers: [] };
  private readonly stagesEl: HTMLElement;
  private readonly inputCanvas: HTMLCanvasElement;
  private readonly fieldEl: HTMLElement;
  private readonly kernelCanvas: HTMLCanvasElement;
  private readonly kernelCaption: HTMLElement;
  private readonly info: HTMLElement;
  /** Outlines the hovered cell on its heat map. */
  private readonly marker = el('div', 'cell-marker');
  private views: LayerView[] = [];
  private current?: { key: string; model: ExplainableModel };

  constructor(private readonly root: HTMLElement) {
    const heading = el('h2', '', 'What every layer sees');
    const focus = el('div', 'focus');
    const inputFigure = el('figure', 'input-view');
    this.inputCanvas = el('canvas');
    this.inputCanvas.width = this.inputCanvas.height = IMAGE_SIDE;
    this.inputCanvas.setAttribute('aria-label', 'The 28×28 input, with the hovered cell’s receptive field');
    this.fieldEl = el('div', 'field');
    this.fieldEl.hidden = true;
    const frame = el('div', 'frame');
    frame.append(this.inputCanvas, this.fieldEl);
    inputFigure.append(frame, el('figcaption', '', 'input 28×28'));
    const kernelFigure = el('figure', 'kernel-view');
    this.kernelCanvas = el('canvas');
    this.kernelCaption = el('figcaption', '', 'kernel');
    kernelFigure.append(this.kernelCanvas, this.kernelCaption);
    kernelFigure.hidden = true;
    this.info = el(
      'p',
      'hover-info',
      'Hover a feature map: its receptive field lights up on the input, and its kernel shows.',
    );
    focus.append(inputFigure, kernelFigure, this.info);
    this.stagesEl = el('div', 'stages');
    root.append(heading, focus, this.stagesEl);
  }

  /** Run the explain variant of `model` on a raw 28×28 image and redraw every layer. */
  async update(model: ModelEntry, backend: Backend, input: Float32Array): Promise<void> {
    const key = `${model.name}/${model.version}/${backend}`;
    if (this.current?.key !== key) {
      const loaded = await explainable(model, backend);
      this.current = { key, model: loaded };
      this.build(loaded);
      this.state.model = model.name;
    }
    const explained = this.current.model;
    const activations = await explained.run(input);
    this.drawInput(input);
    for (const view of this.views) {
      const activation = activations.get(view.layer.output);
      if (!activation) continue;
      const channels = activation.dims.length === 4 ? (activation.dims[1] as number) : 1;
      view.activation = activation;
      view.tiling = tiling(activation.dims, Math.min(view.maxCols, columnCols(channels)));
      drawHeatmap(view.canvas, view.tiling, activation.values);
      view.canvas.classList.toggle('vector', activation.dims.length !== 4 && view.tiling.height === 1);
      view.detail.textContent = this.describe(explained, view.layer, activation.dims);
    }
    this.state.layers = this.views.flatMap((v) =>
      v.activation
        ? [
            {
              output: v.layer.output,
              label: labelOf(v.layer),
              op: v.layer.op,
              dims: v.activation.dims,
              values: v.activation.values,
            },
          ]
        : [],
    );
    this.root.hidden = false;
    this.state.runs++;
  }

  /** Nothing drawn: hide the panel. */
  clear(): void {
    this.root.hidden = true;
    this.hideHover();
  }

  private describe(model: ExplainableModel, layer: ExplainLayer, dims: number[]): string {
    const kernel = layer.weight ? model.kernel(layer.weight) : undefined;
    const op = kernel ? `${layer.op} ${kernel.dims[2]}×${kernel.dims[3]}` : layer.op;
    return `${op} → ${dims.slice(1).join('×')}`;
  }

  private build(model: ExplainableModel): void {
    this.views = [];
    this.hideHover();
    this.stagesEl.replaceChildren(...model.stages.map((stage) => this.stageElement(stage)));
  }

  private stageElement(stage: ExplainStage): HTMLElement {
    if (stage.kind === 'layer') return this.layerElement(stage.layer, 16);
    const block = el('div', 'block');
    const modules = stage.branches.flat().flatMap((l) => (l.module ? [l.module.split('.')[0] as string] : []));
    const name = modules.length > 0 && modules.every((m) => m === modules[0]) ? (modules[0] as string) : '';
    const kind =
      stage.joinOp === 'Concat' ? 'branches side by side, stacked by Concat' : `branches joined by ${stage.joinOp}`;
    block.append(el('div', 'block-label', `${name ? `${name}: ` : ''}${stage.branches.length} ${kind}`));
    const branches = el('div', 'branches');
    // A shortcut column only needs room for its label.
    branches.style.gridTemplateColumns = stage.branches.map((b) => (b.length ? 'minmax(0, 1fr)' : '6rem')).join(' ');
    const maxCols = Math.max(2, Math.floor(16 / stage.branches.filter((b) => b.length > 0).length));
    for (const branch of stage.branches) {
      const column = el('div', 'branch');
      if (branch.length === 0) column.append(el('div', 'shortcut', 'identity shortcut'));
      for (const layer of branch) column.append(this.layerElement(layer, maxCols, shortLabel(layer, name)));
      branches.append(column);
    }
    block.append(branches);
    if (stage.join) block.append(this.layerElement(stage.join, 16));
    return block;
  }

  private layerElement(layer: ExplainLayer, maxCols: number, label = labelOf(layer)): HTMLElement {
    const box = el('div', 'layer');
    box.dataset.output = layer.output;
    const caption = el('div', 'layer-label');
    const detail = el('span', 'layer-detail');
    caption.append(el('strong', '', label), ' ', detail);
    caption.title = labelOf(layer);
    const canvas = el('canvas', 'heatmap');
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${labelOf(layer)} activations`);
    const frame = el('div', 'heatmap-frame');
    frame.append(canvas);
    box.append(caption, frame);
    const view: LayerView = { layer, canvas, detail, maxCols };
    canvas.addEventListener('pointermove', (e) => this.hover(view, e));
    canvas.addEventListener('pointerleave', () => this.hideHover());
    this.views.push(view);
    return box;
  }

  private drawInput(input: Float32Array): void {
    const ctx = this.inputCanvas.getContext('2d');
    if (!ctx) return;
    const image = ctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
    for (let i = 0; i < IMAGE_PIXELS; i++) {
      const v = Math.round(255 * (input[i] as number));
      image.data.set([v, v, v, 255], i * 4);
    }
    ctx.putImageData(image, 0, 0);
  }

  private hover(view: LayerView, e: PointerEvent): void {
    const { tiling: t, activation } = view;
    const model = this.current?.model;
    if (!t || !activation || !model) return;
    const rect = view.canvas.getBoundingClientRect();
    const cell = cellAt(
      t,
      ((e.clientX - rect.left) / rect.width) * view.canvas.width,
      ((e.clientY - rect.top) / rect.height) * view.canvas.height,
    );
    if (cell) this.showHover(view, cell, model);
    else this.hideHover();
  }

  private showHover(view: LayerView, cell: Cell, model: ExplainableModel): void {
    const { layer, activation, tiling: t } = view;
    if (!activation || !t) return;
    const value = activation.values[valueIndex(t, cell)] as number;
    const spatial = activation.dims.length === 4;
    const field = spatial ? model.fields.get(layer.output) : undefined;
    const box = field ? cellField(field, cell.y, cell.x, IMAGE_SIDE) : undefined;
    if (box) {
      const pct = (v: number) => `${(100 * v) / IMAGE_SIDE}%`;
      Object.assign(this.fieldEl.style, {
        left: pct(box.left),
        top: pct(box.top),
        width: pct(box.right - box.left + 1),
        height: pct(box.bottom - box.top + 1),
      });
    }
    this.fieldEl.hidden = !box;
    const origin = cellOrigin(t, cell);
    const { width, height } = view.canvas;
    Object.assign(this.marker.style, {
      left: `${(100 * origin.x) / width}%`,
      top: `${(100 * origin.y) / height}%`,
      width: `${100 / width}%`,
      height: `${100 / height}%`,
    });
    view.canvas.parentElement?.append(this.marker);
    this.marker.hidden = false;
    const kernel = layer.weight ? model.kernel(layer.weight) : undefined;
    const kernelFigure = this.kernelCanvas.parentElement as HTMLElement;
    kernelFigure.hidden = !kernel || !spatial;
    let kernelDims: number[] | undefined;
    if (kernel && spatial) {
      const [, inChannels = 1, kh = 1, kw = 1] = kernel.dims;
      const size = inChannels * kh * kw;
      const slice = kernel.data.subarray(cell.channel * size, (cell.channel + 1) * size) as Float32Array;
      kernelDims = [inChannels, kh, kw];
      drawHeatmap(this.kernelCanvas, tiling([1, inChannels, kh, kw], Math.ceil(Math.sqrt(2 * inChannels))), slice);
      this.kernelCaption.textContent = `kernel of channel ${cell.channel}: ${inChannels}×${kh}×${kw}`;
    }
    const where = spatial
      ? `channel ${cell.channel}, cell (${cell.y}, ${cell.x})`
      : `unit ${cell.y * t.width + cell.x}`;
    const sees = box
      ? `sees input rows ${box.top}–${box.bottom}, columns ${box.left}–${box.right} (${box.bottom - box.top + 1}×${box.right - box.left + 1})`
      : 'sees the whole image';
    this.info.textContent = `${labelOf(layer)}, ${where} = ${value.toFixed(3)}: ${sees}.`;
    this.state.hover = {
      output: layer.output,
      channel: cell.channel,
      y: cell.y,
      x: cell.x,
      value,
      ...(box ? { field: box } : {}),
      ...(kernelDims ? { kernel: kernelDims } : {}),
    };
  }

  private hideHover(): void {
    this.fieldEl.hidden = true;
    this.marker.hidden = true;
    this.state.hover = undefined;
  }
}
