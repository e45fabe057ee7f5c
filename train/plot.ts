/**
 * Line charts as SVG, rendered headless with Vega-Lite (no browser, no canvas): accuracy and loss per
 * epoch for a run, or several runs side by side. Each chart is also rasterized to PNG with resvg
 * (for places that show no SVG: chat, slides, some viewers).
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { type WriteFile, writeFileAtomic } from '../node/files.ts';

/**
 * The renderers, loaded on the first chart: Vega and Vega-Lite are ~100 modules, half a CPU-second of every
 * start of a command that imports this file (train, sweep, compare) and then exits on a bad flag or plots nothing.
 */
let renderers:
  | Promise<[typeof import('vega'), typeof import('vega-lite'), typeof import('@resvg/resvg-js')]>
  | undefined;
const loadRenderers = () => {
  renderers ??= Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  return renderers;
};

export interface Series {
  name: string;
  points: [x: number, y: number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Zoom the y axis to the data instead of starting at zero (accuracy near 99%). */
  zoomY?: boolean;
  width?: number;
  height?: number;
}

function spec(options: ChartOptions): TopLevelSpec {
  const values = options.series.flatMap((s) => s.points.map(([x, y]) => ({ series: s.name, x, y })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: options.title,
    width: options.width ?? 480,
    height: options.height ?? 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.xLabel, axis: { tickMinStep: 1 } },
      y: { field: 'y', type: 'quantitative', title: options.yLabel, scale: { zero: !options.zoomY } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: options.series.length > 1 ? { orient: 'bottom-right' } : null,
      },
      tooltip: [{ field: 'series' }, { field: 'x' }, { field: 'y', format: '.4f' }],
    },
  };
}

/** Render one chart to an SVG string. */
export async function lineChartSvg(options: ChartOptions): Promise<string> {
  const [vega, vegaLite] = await loadRenderers();
  const view = new vega.View(vega.parse(vegaLite.compile(spec(options)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterize an SVG at `scale`× its size (2 by default, crisp on high-density screens). */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  const [, , { Resvg }] = await loadRenderers();
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, font: { loadSystemFonts: true } }).render().asPng();
}

/** Write `<name>.svg` and `<name>.png` into `dir`, each atomically. */
export async function writeChart(
  dir: string,
  name: string,
  options: ChartOptions,
  write: WriteFile = writeFileAtomic,
): Promise<void> {
  const svg = await lineChartSvg(options);
  await write(join(dir, `${name}.svg`), svg);
  await write(join(dir, `${name}.png`), await svgToPng(svg));
}
