/** The "Machine" section every result file ends with, and its JSON twin. */
import { type LoadAverages, loadAverage, type Machine, othersCpuShare } from './machine.ts';
import type { BenchReport } from './report.ts';
import { blasLabel, type TorchInfo } from './torch.ts';

/** Where and under what a benchmark ran. */
export interface RunConditions {
  machine: Machine;
  load: LoadAverages;
  /** The PyTorch the benchmark compared against; undefined when it ran none. */
  torch?: TorchInfo;
  /** When the benchmark started and ended (undefined in reports made before the file recorded it). */
  when?: { started: Date; ended: Date };
}

/** "2026-12-06 12:40:01–12:46:33 UTC" (the end's date too when the run crossed midnight). */
export function utcSpan({ started, ended }: { started: Date; ended: Date }): string {
  const [startDay, startTime] = started.toISOString().slice(0, 19).split('T') as [string, string];
  const [endDay, endTime] = ended.toISOString().slice(0, 19).split('T') as [string, string];
  return `${startDay} ${startTime}–${endDay === startDay ? '' : `${endDay} `}${endTime} UTC`;
}

const loads = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');

/**
 * Something else was running: other processes used over a quarter of the CPU time in the quiet window before
 * the run, or, where that was not measured, the 1-minute load was above a quarter of the vCPUs.
 */
const busy = (c: RunConditions) =>
  c.load.othersBefore !== undefined ? c.load.othersBefore > 0.25 : (c.load.before[0] ?? 0) > c.machine.cpu.vcpus / 4;

const othersLine = (c: RunConditions) =>
  c.load.othersBefore === undefined
    ? ''
    : `; other processes used ${(100 * c.load.othersBefore).toFixed(1)}% of the CPU time in the 3 s before (the bench slept)`;

/** torch.__config__.show()'s "CPU capability usage: AVX2" line: the ISA of ATen's own kernels. */
const cpuCapability = (config: string) => /CPU capability usage: *(\S+)/.exec(config)?.[1] ?? 'not reported';

function torchLines(torch: TorchInfo | undefined): string[] {
  if (!torch) return ['- PyTorch: not run by this benchmark'];
  const openblas = torch.openblas ? `; OpenBLAS kernels for ${torch.openblas.coreName} (${torch.openblas.config})` : '';
  return [
    `- PyTorch ${torch.version}: ATen CPU capability ${cpuCapability(torch.config)}, oneDNN ${torch.mkldnn ? 'available' : 'not available'}; BLAS ${blasLabel(torch)}${openblas}. Each row's thread settings are in its table.`,
    '',
    "<details><summary>torch.__config__.show() and parallel_info() (the latter with the --info process's defaults)</summary>",
    '',
    '```',
    torch.config.trim(),
    '',
    torch.parallelInfo.trim(),
    '```',
    '',
    '</details>',
  ];
}

export function machineMarkdown(c: RunConditions): string {
  const { cpu } = c.machine;
  return [
    '## Machine',
    '',
    `- CPU: ${cpu.modelName} (${cpu.vendor}, family/model/stepping ${cpu.familyModelStepping}${cpu.cacheSize ? `, cache ${cpu.cacheSize}` : ''}), ${cpu.vcpus} vCPUs (${cpu.available} available to the process)${cpu.virtualized ? ', virtual machine' : ''}`,
    `- ISA: ${cpu.isa.join(' ') || 'none of the listed extensions'}`,
    `- Memory ${c.machine.memoryGiB.toFixed(1)} GiB; ${c.machine.os}; kernel ${c.machine.kernel}`,
    `- Node ${c.machine.node}${c.machine.nodeFlags?.length ? ` (${c.machine.nodeFlags.join(' ')})` : ''}, onnxruntime-node ${c.machine.onnxruntimeNode}; ${c.machine.nativeKernels ?? 'native kernels not recorded'}`,
    `- Code: ${c.machine.code ? `commit ${c.machine.code}` : 'not a git checkout (commit not recorded)'}`,
    ...(c.when ? [`- When: ${utcSpan(c.when)}`] : []),
    `- Load average (1 / 5 / 15 min): before ${loads(c.load.before)}, after ${loads(c.load.after)}${othersLine(c)}${busy(c) ? ' — **the machine was busy before the run: not a publishable measurement**' : ''}`,
    ...torchLines(c.torch),
    '',
  ].join('\n');
}

/** The report with the Machine section appended to its markdown and `machine`/`load`/`torch` added to its JSON. */
/** Runs one benchmark and adds the machine, the load around it (and others' CPU share just before) and its PyTorch. */
export async function measuredOn(
  machine: Machine,
  bench: () => Promise<BenchReport>,
  torch?: TorchInfo,
): Promise<BenchReport> {
  const othersBefore = await othersCpuShare();
  const before = loadAverage();
  const started = new Date();
  const report = await bench();
  const when = { started, ended: new Date() };
  return withMachine(report, { machine, load: { before, after: loadAverage(), othersBefore }, torch, when });
}

function withMachine(report: BenchReport, c: RunConditions): BenchReport {
  return {
    ...report,
    markdown: `${report.markdown.trimEnd()}\n\n${machineMarkdown(c)}`,
    json: {
      ...(report.json as object),
      machine: c.machine,
      load: c.load,
      torch: c.torch ?? null,
      started: c.when?.started.toISOString() ?? null,
      ended: c.when?.ended.toISOString() ?? null,
    },
  };
}
