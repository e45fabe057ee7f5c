/**
 * Smaller variants of a deployable model, both weight-only (activations stay float32, so every ORT
 * backend — node CPU, wasm, WebGPU — runs them unchanged):
 * - fp16: each float weight stored as FLOAT16 and Cast back to float32 (ORT folds the Cast at load);
 * - int8: each Conv/Gemm weight quantized symmetrically per output channel (scale = max|w|/127) and
 *   restored by DequantizeLinear; biases and BatchNorm stay float32.
 */

import { Float16Array } from '@petamoriken/float16';
import { int, toAttributeProto } from '../../onnx/attributes.ts';
import { attrInt } from '../../onnx/read-attributes.ts';
import type { ModelProto, NodeProto, TensorProto } from '../../onnx/schema.ts';
import { floatTensor, fromTensorProto, toTensorProto } from '../../onnx/tensor.ts';
import { GraphEditor } from './graph-edit.ts';

export type Variant = 'fp16' | 'int8';

function float16Proto(name: string, values: Float32Array, dims: number[]): TensorProto {
  const half = new Float16Array(values);
  const bits = new Uint16Array(half.buffer);
  return toTensorProto(name, { dataType: 'FLOAT16', dims, data: bits });
}

/** Store every float initializer as float16, Cast to float32 where it is read. */
export function toFp16Weights(source: ModelProto): ModelProto {
  const model = structuredClone(source);
  const editor = new GraphEditor(model.graph ?? {});
  const casts: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  for (const proto of editor.graph.initializer ?? []) {
    const tensor = fromTensorProto(proto);
    const name = proto.name as string;
    if (tensor.dataType !== 'FLOAT' || tensor.data.length < 16) {
      initializers.push(proto); // scalars and shapes: not worth a Cast
      continue;
    }
    initializers.push(float16Proto(`${name}.fp16`, tensor.data as Float32Array, tensor.dims));
    casts.push({
      op_type: 'Cast',
      name: `${name}.to_fp32`,
      input: [`${name}.fp16`],
      output: [name],
      attribute: [toAttributeProto('to', int(1))],
    });
  }
  editor.graph.initializer = initializers;
  editor.graph.node = [...casts, ...editor.nodes];
  return model;
}

/** Quantize Conv and Gemm weights to int8 per output channel, restored by DequantizeLinear. */
export function toInt8Weights(source: ModelProto): ModelProto {
  const model = structuredClone(source);
  const editor = new GraphEditor(model.graph ?? {});
  const dequantize: NodeProto[] = [];
  const done = new Set<string>();
  for (const node of editor.nodes.filter(
    (n) => n.op_type === 'Conv' || (n.op_type === 'Gemm' && attrInt(n, 'transB', 0) === 1),
  )) {
    const name = node.input[1] as string;
    const weight = editor.floatInitializer(name);
    if (!weight || done.has(name)) continue;
    done.add(name);
    const channels = weight.dims[0] as number;
    const per = weight.data.length / channels;
    const q = new Int8Array(weight.data.length);
    const scales = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      let max = 0;
      for (let k = 0; k < per; k++) max = Math.max(max, Math.abs(weight.data[c * per + k] as number));
      const scale = max > 0 ? max / 127 : 1;
      scales[c] = scale;
      for (let k = 0; k < per; k++)
        q[c * per + k] = Math.max(-127, Math.min(127, Math.round((weight.data[c * per + k] as number) / scale)));
    }
    editor.setInitializer(`${name}.int8`, { dataType: 'INT8', dims: weight.dims, data: q });
    editor.setInitializer(`${name}.scale`, floatTensor([channels], scales));
    editor.setInitializer(`${name}.zero_point`, { dataType: 'INT8', dims: [channels], data: new Int8Array(channels) });
    dequantize.push({
      op_type: 'DequantizeLinear',
      name: `${name}.dequantize`,
      input: [`${name}.int8`, `${name}.scale`, `${name}.zero_point`],
      output: [`${name}.dequantized`],
      attribute: [toAttributeProto('axis', int(0))],
    });
    editor.rewire(name, `${name}.dequantized`);
  }
  editor.graph.node = [...dequantize, ...editor.nodes];
  editor.pruneInitializers();
  return model;
}

export function makeVariant(model: ModelProto, variant: Variant): ModelProto {
  return variant === 'fp16' ? toFp16Weights(model) : toInt8Weights(model);
}
