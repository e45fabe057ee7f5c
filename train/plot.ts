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

/** The chart's points, as the spec's named data source `points` holds them. */
const pointsOf = (options: ChartOptions) =>
  options.series.flatMap((s) => s.points.map(([x, y]) => ({ series: s.name, x, y })));

/** Everything but the points (they are inserted into the named source), so one compiled spec serves every epoch. */
function spec(options: ChartOptions): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: options.title,
    width: options.width ?? 480,
    height: options.height ?? 300,
    background: 'white',
    data: { name: 'points' },
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

/**
 * Compiled and parsed specs by everything but their points: a run draws the same two charts after every epoch,
 * and compiling (Vega-Lite) plus parsing (Vega) was a quarter of each chart's time.
 */
const parsedCharts = new Map<string, ReturnType<typeof import('vega').parse>>();
const PARSED_CHARTS_KEPT = 32;

/** Render one chart to an SVG string. */
export async function lineChartSvg(options: ChartOptions): Promise<string> {
  const [vega, vegaLite] = await loadRenderers();
  const template = spec(options);
  const key = JSON.stringify(template);
  let runtime = parsedCharts.get(key);
  if (!runtime) {
    runtime = vega.parse(vegaLite.compile(template).spec);
    if (parsedCharts.size >= PARSED_CHARTS_KEPT) parsedCharts.delete(parsedCharts.keys().next().value as string);
    parsedCharts.set(key, runtime);
  }
  const view = new vega.View(runtime, { renderer: 'none' }).data('points', pointsOf(options));
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
