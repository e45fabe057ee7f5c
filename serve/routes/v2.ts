/**
 * The Open Inference Protocol v2 (KServe / Triton REST): health, server and model metadata, readiness,
 * inference. Transparent: the model's own inputs, outputs and datatypes, run as they are — no added
 * normalization or outputs (those are /predict's conveniences), so a KServe/Triton client gets here what
 * the same file gives in Triton.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Dim } from '../../export/onnx/builder.ts';
import type { ValueDescription } from '../../export/onnx/describe.ts';
import { describeValue, readJson, zodMessage } from '../body.ts';
import { HttpError } from '../errors.ts';
import { assertFiniteOutputs } from '../inference.ts';
import { commonErrors, errorResponse, mount, pathParams } from '../openapi.ts';
import type { ModelRepository, ServedVersion } from '../repository.ts';
import {
  InferRequestSchema,
  InferResponseSchema,
  ModelMetadataSchema,
  ModelReadySchema,
  ServerMetadataSchema,
} from '../schemas.ts';
import { assertBatchSize, parseVersion, withModel } from './lookup.ts';

export interface V2RouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  serverName: string;
  serverVersion: string;
}

/** ONNX element types → v2 datatypes (the contract makes every served tensor FLOAT). */
const DATATYPES: Record<string, string> = { FLOAT: 'FP32', FLOAT16: 'FP16', DOUBLE: 'FP64', INT64: 'INT64' };
const v2Shape = (shape: Dim[]) => shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
const tensorMetadata = (v: ValueDescription) => ({
  name: v.name,
  datatype: DATATYPES[v.dataType] ?? v.dataType,
  shape: v2Shape(v.shape),
});

function modelMetadata(model: ServedVersion) {
  return {
    name: model.name,
    versions: [String(model.version)],
    platform: 'onnxruntime_onnx',
    inputs: [tensorMetadata(model.signature.input)],
    outputs: model.signature.outputs.map(tensorMetadata),
  };
}

/**
 * Flatten v2 tensor data (flat, or nested row-major to the tensor's rank) into float32 — iteratively,
 * so hostile nesting can't exhaust the stack, and refusing anything deeper than the shape allows.
 */
export function flattenTensorData(data: unknown[], rank: number, expected: number): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const stack: { items: unknown[]; index: number }[] = [{ items: data, index: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { items: unknown[]; index: number };
    if (top.index >= top.items.length) {
      stack.pop();
      continue;
    }
    const value = top.items[top.index++];
    if (Array.isArray(value)) {
      if (stack.length >= rank)
        throw new HttpError(400, 'invalid_shape', `data is nested deeper than the tensor's ${rank} dimensions`);
      stack.push({ items: value, index: 0 });
    } else if (typeof value === 'number' && Number.isFinite(Math.fround(value))) {
      if (n >= expected)
        throw new HttpError(400, 'invalid_shape', `data has more than the ${expected} values of its shape`);
      out[n++] = value;
    } else {
      throw new HttpError(
        400,
        'invalid_value',
        typeof value === 'number'
          ? `data[${n}] is ${value}, outside float32's range (±3.4028235e38): FP32 data must be float32 numbers`
          : `data[${n}] is ${describeValue(value)}; FP32 data must be numbers`,
      );
    }
  }
  if (n !== expected) throw new HttpError(400, 'invalid_shape', `data has ${n} values; its shape needs ${expected}`);
  return out;
}

/** The request's input tensor, checked against the model's own input: name, datatype and shape. */
function inputTensor(model: ServedVersion, body: z.infer<typeof InferRequestSchema>) {
  const declared = model.signature.input;
  if (body.inputs.length !== 1)
    throw new HttpError(400, 'invalid_inputs', `model '${model.name}' takes one input, ${declared.name}`);
  const tensor = body.inputs[0] as (typeof body.inputs)[number];
  if (tensor.name !== declared.name)
    throw new HttpError(
      400,
      'invalid_inputs',
      `unknown input '${tensor.name.slice(0, 60)}'; the model's input is '${declared.name}'`,
    );
  const datatype = DATATYPES[declared.dataType];
  if (tensor.datatype !== datatype)
    throw new HttpError(
      400,
      'invalid_datatype',
      `input ${declared.name} is ${datatype}, not ${tensor.datatype.slice(0, 20)}`,
    );
  const want = v2Shape(declared.shape);
  const [count = 0, ...rest] = tensor.shape;
  const fixedBatch = (want[0] ?? -1) > 0;
  const ok =
    tensor.shape.length === want.length &&
    rest.every((d, i) => d === want[i + 1]) &&
    count >= 1 &&
    (!fixedBatch || count === want[0]);
  if (!ok)
    throw new HttpError(
      400,
      'invalid_shape',
      `input ${declared.name} has shape [${want.join(',')}] (-1: any ≥ 1); got [${tensor.shape.slice(0, 8).join(',')}]`,
    );
  assertBatchSize(model, count);
  const per = rest.reduce((a, b) => a * b, 1);
  return { count, data: flattenTensorData(tensor.data, tensor.shape.length, count * per) };
}

export function v2Routes(options: V2RouteOptions): OpenAPIHono {
  const { repository, maxBodyBytes } = options;
  const app = new OpenAPIHono();
  const json = (schema: z.ZodType, description: string) => ({
    description,
    content: { 'application/json': { schema } },
  });
  mount(
    app,
    createRoute({
      method: 'get',
      path: '/v2',
      tags: ['v2'],
      summary: 'Server metadata',
      responses: { 200: json(ServerMetadataSchema, 'Server name and version') },
    }),
    (c) => c.json({ name: options.serverName, version: options.serverVersion, extensions: [] }),
  );
  mount(
    app,
    createRoute({
      method: 'get',
      path: '/v2/health/live',
      tags: ['v2'],
      summary: 'Liveness: the process answers',
      responses: { 200: json(z.object({ live: z.boolean() }), 'Live') },
    }),
    (c) => c.json({ live: true }),
  );
  mount(
    app,
    createRoute({
      method: 'get',
      path: '/v2/health/ready',
      tags: ['v2'],
      summary: 'Readiness: at least one model is loaded',
      responses: {
        200: json(z.object({ ready: z.boolean() }), 'Ready'),
        503: json(z.object({ ready: z.boolean() }), 'No model loaded yet'),
      },
    }),
    (c) => (repository.readyCount > 0 ? c.json({ ready: true }) : c.json({ ready: false }, 503)),
  );
  for (const base of ['/v2/models/{model}', '/v2/models/{model}/versions/{version}']) {
    mount(
      app,
      createRoute({
        method: 'get',
        path: base,
        tags: ['v2'],
        summary: "The model's own inputs and outputs",
        request: pathParams(base),
        responses: { 200: json(ModelMetadataSchema, 'Model metadata'), 404: errorResponse('Unknown model or version') },
      }),
      (c) => withModel(repository, c.req.param('model'), c.req.param('version'), async (m) => c.json(modelMetadata(m))),
    );
    mount(
      app,
      createRoute({
        method: 'get',
        path: `${base}/ready`,
        tags: ['v2'],
        summary: 'Model readiness',
        request: pathParams(base),
        responses: {
          200: json(ModelReadySchema, 'Ready'),
          503: json(ModelReadySchema, 'Known but not loaded (see /api/models for why)'),
          404: errorResponse('Unknown model'),
        },
      }),
      (c) => {
        const name = c.req.param('model') as string;
        const version = parseVersion(c.req.param('version'));
        const versions = repository.versions(name);
        if (versions.length === 0) throw new HttpError(404, 'model_not_found', `unknown model '${name.slice(0, 100)}'`);
        const ready =
          version === undefined
            ? versions.some((v) => v.ready)
            : Boolean(versions.find((v) => v.version === version)?.ready);
        return c.json({ name, ready }, ready ? 200 : 503);
      },
    );
    mount(
      app,
      createRoute({
        method: 'post',
        path: `${base}/infer`,
        tags: ['v2'],
        summary: 'Run the model as it is on the tensors it declares',
        request: {
          ...pathParams(base),
          body: { content: { 'application/json': { schema: InferRequestSchema } }, required: true },
        },
        responses: {
          200: json(InferResponseSchema, "The model's outputs"),
          ...commonErrors,
          404: errorResponse('Unknown model or version'),
        },
      }),
      async (c) => {
        const parsed = InferRequestSchema.safeParse(await readJson(c, maxBodyBytes));
        if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
        const body = parsed.data;
        return withModel(repository, c.req.param('model'), c.req.param('version'), async (model) => {
          const { count, data } = inputTensor(model, body);
          const names = model.signature.outputs.map((o) => o.name);
          const wanted = body.outputs?.map((o) => o.name) ?? names;
          const unknown = wanted.find((w) => !names.includes(w));
          if (unknown !== undefined)
            throw new HttpError(
              400,
              'invalid_outputs',
              `unknown output '${unknown.slice(0, 60)}'; the model has ${names.join(', ')}`,
            );
          const outputs = await model.batcher.infer(data, count);
          assertFiniteOutputs(model, Object.fromEntries(wanted.map((name) => [name, outputs[name] as Float32Array])));
          return c.json({
            model_name: model.name,
            model_version: String(model.version),
            ...(body.id !== undefined ? { id: body.id } : {}),
            outputs: model.signature.outputs
              .filter((o) => wanted.includes(o.name))
              .map((o) => {
                const values = outputs[o.name] as Float32Array;
                const declared = v2Shape(o.shape);
                const shape =
                  declared.length > 1 && declared.slice(1).every((d) => d > 0)
                    ? [count, ...declared.slice(1)]
                    : [count, values.length / count];
                return { name: o.name, datatype: DATATYPES[o.dataType] ?? o.dataType, shape, data: Array.from(values) };
              }),
          });
        });
      },
    );
  }
  return app;
}
