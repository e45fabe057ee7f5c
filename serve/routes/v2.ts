/**
 * The Open Inference Protocol v2 (KServe / Triton REST): health, server and model metadata, readiness,
 * inference. Transparent: the model's own inputs, outputs and datatypes, run as they are — no added
 * normalization or outputs (those are /predict's conveniences), so a KServe/Triton client gets here what
 * the same file gives in Triton.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { HEADER_LENGTH } from '../binary-tensors.ts';
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
import { inferResponse, inputTensor, readInferRequest, requestedOutputs, tensorMetadata } from '../v2-infer.ts';
import { parseVersion, withModel } from './lookup.ts';

export interface V2RouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  serverName: string;
  serverVersion: string;
}

/** The protocol extensions this server implements (Triton's names). */
export const V2_EXTENSIONS = ['binary_tensor_data', 'statistics', 'model_repository'];

export function modelMetadata(model: ServedVersion) {
  return {
    name: model.name,
    versions: [String(model.version)],
    platform: 'onnxruntime_onnx',
    inputs: [tensorMetadata(model.signature.input)],
    outputs: model.signature.outputs.map(tensorMetadata),
  };
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
    (c) =>
      c.json({
        name: options.serverName,
        version: options.serverVersion,
        extensions: V2_EXTENSIONS,
      }),
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
          body: {
            content: {
              'application/json': { schema: InferRequestSchema },
              'application/octet-stream': {
                schema: z.string().openapi({
                  format: 'binary',
                  description: `Binary tensor extension: the JSON request (${HEADER_LENGTH} bytes), then each binary input's little-endian FP32 data`,
                }),
              },
            },
            required: true,
          },
        },
        responses: {
          200: {
            description: "The model's outputs: JSON, or with binary outputs the JSON header then their bytes",
            content: {
              'application/json': { schema: InferResponseSchema },
              'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) },
            },
          },
          ...commonErrors,
          404: errorResponse('Unknown model or version'),
          422: errorResponse('The model answered NaN or infinity for this input'),
          503: errorResponse('The model failed (over its run budget, crashed, wrong rows)'),
        },
      }),
      async (c) => {
        const request = await readInferRequest(c, maxBodyBytes);
        return withModel(repository, c.req.param('model'), c.req.param('version'), (model) =>
          model.stats.request(async () => {
            const { count, data } = inputTensor(model, request);
            const wanted = requestedOutputs(model, request.body);
            const { outputs, timings } = await model.batcher.inferTimed(data, count);
            assertFiniteOutputs(
              model,
              Object.fromEntries(wanted.map(({ name }) => [name, outputs[name] as Float32Array])),
            );
            return { value: inferResponse(model, request.body, wanted, outputs, count), count, timings };
          }),
        );
      },
    );
  }
  return app;
}
