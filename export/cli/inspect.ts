/**
 * npm run inspect -- <file.onnx>
 *
 * Opset, IR version, inputs and outputs with shapes, an op histogram, the parameter count and the
 * metadata of any ONNX file — ours or one exported elsewhere (e.g. torch.onnx.export).
 */
import { readFile } from 'node:fs/promises';
import { type CliIo, processIo } from '../../node/cli/io.ts';
import { newProgram } from '../../node/cli/program.ts';
import { runCommand } from '../../node/cli/run-cli.ts';
import { runIfMain } from '../../node/cli/run-if-main.ts';
import { decodeModel } from '../../onnx/codec.ts';
import { describeModel } from '../../onnx/describe.ts';

const command = (io: CliIo) =>
  newProgram('inspect', io).description('Describe an ONNX model file').argument('<file>', '.onnx file');

export function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  return runCommand(io, async () => {
    const file = command(io).parse(argv, { from: 'user' }).args[0] as string;
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const info = describeModel(decodeModel(bytes));
    const shape = (s: (number | string)[]) => `[${s.join(', ')}]`;
    const lines = [
      `${file}: ${(bytes.length / 1024).toFixed(1)} KiB`,
      `IR version ${info.irVersion}, opsets ${info.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ')}`,
      `producer: ${info.producerName} ${info.producerVersion}`.trimEnd(),
      'inputs:',
      ...info.inputs.map((v) => `  ${v.name}: ${v.dataType} ${shape(v.shape)}`),
      'outputs:',
      ...info.outputs.map((v) => `  ${v.name}: ${v.dataType} ${shape(v.shape)}`),
      `parameters: ${info.parameterCount.toLocaleString('en-US')} in ${info.initializerCount} initializers`,
      `nodes: ${info.nodeCount}`,
      'ops:',
      ...Object.entries(info.ops).map(([op, n]) => `  ${op.padEnd(24)} ${n}`),
    ];
    const meta = Object.entries(info.metadata);
    if (meta.length) lines.push('metadata:', ...meta.map(([k, v]) => `  ${k}: ${v}`));
    io.out(`${lines.join('\n')}\n`);
  });
}

runIfMain(import.meta.url, main);
