/** A torchinfo-like summary of a zoo model: one row per module call, then totals. */
import Table from 'cli-table3';
import { countParams, IMAGE_SHAPE, inspectModule } from '../core/model/forward-graph.ts';
import type { Module } from '../core/model/layers/index.ts';

const fmt = (n: number) => n.toLocaleString('en-US');
export const formatShape = (shape: readonly number[]) => shape.join('×');

export interface Summary {
  text: string;
  totalParams: number;
  totalMacs: number;
}

export function summarize(name: string, module: Module): Summary {
  const { params, rows, macs } = inspectModule(module);
  const table = new Table({
    head: ['Layer (type)', 'Output shape', 'Params', 'MACs'],
    colAligns: ['left', 'right', 'right', 'right'],
    style: { head: [], border: [], compact: true }, // no colours: the output is often piped or diffed
  });
  table.push(['input', formatShape(IMAGE_SHAPE), '', '']);
  for (const row of rows) {
    const label = `${'  '.repeat(row.depth)}${row.path.split('.').at(-1)} (${row.type})`;
    table.push([
      label,
      formatShape(row.outputShape),
      row.params ? fmt(row.params) : '--',
      row.macs ? fmt(row.macs) : '--',
    ]);
  }
  const totalParams = countParams(params);
  const lines = [
    `${name}: ${module.type}`,
    table.toString(),
    `Total params: ${fmt(totalParams)}`,
    `Total MACs: ${fmt(macs)}`,
    `Parameter memory: ${((totalParams * 4) / 1024).toFixed(1)} KiB (float32)`,
  ];
  return { text: lines.join('\n'), totalParams, totalMacs: macs };
}
