/**
 * The Open Inference Protocol v2 (KServe / Triton REST): health, server and model metadata, readiness,
 * inference. Transparent: the model's own inputs, outputs and datatypes, run as they are — no added
 * normalization or outputs (those are /predict's conveniences), so a KServe/Triton client gets here what
 * the same file gives in Triton.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { ValueDescription } from '../../onnx/describe.ts';
import { HEADER_LENGTH } from '../binary-tensors.ts';
import { remoteAddress } from '../body-budget.ts';
import { clientSignal } from '../client-gone.ts';
import { HttpError } from '../errors.ts';
import { assertFiniteOutputs } from '../inference.ts';
import type { ModelSettings } from '../model-config.ts';
import { modelParams, protocolCommonErrors, protocolErrorResponse } from '../openapi.ts';
import type { ModelRepository, ServedVersion } from '../repository.ts';
import { readsBody, schemaRef } from '../route-body.ts';
import { InferResponseSchema, ModelMetadataSchema, ModelReadySchema, ServerMetadataSchema } from '../schemas.ts';
import { reserveAnswer } from '../unread-answers.ts';
import {
  expectedAnswerBytes,
  inferResponse,
  inputTensor,
  readInferRequest,
  requestedOutputs,
  tensorMetadata,
} from '../v2-infer.ts';
import { withModel } from './lookup.ts';

export interface V2RouteOptions {
  repository: ModelRepository;
  maxBodyBytes: number;
  serverName: string;
  serverVersion: string;
}

/** The protocol extensions this server implements (Triton's names). */
export const V2_EXTENSIONS = ['binary_tensor_data', 'statistics', 'model_repository', 'model_configuration'];

/** Model metadata as Triton answers it; `versions`: every version served now (any may be asked for by number). */
export function modelMetadata(model: ServedVersion, versions: readonly number[] = [model.version]) {
  return {
    name: model.name,
    versions: versions.map(String),
    platform: 'onnxruntime_onnx',
    inputs: [tensorMetadata(model.signature.input)],
    outputs: model.signature.outputs.map(tensorMetadata),
  };
}

/**
 * The version's configuration as Triton's GET …/config answers it (inference.ModelConfig as JSON), from
 * what this server actually serves: tritonclient's get_model_config and perf_analyzer read it.
 */
export function modelConfig(model: ServedVersion, settings: ModelSettings) {
  // A config's max_batch_size 0 is shown as written: full dims, no dynamic_batching (Triton's reading).
  const batching = !model.signature.staticBatchOne && settings.declaredMaxBatch !== 0;
  const tensor = (v: ValueDescription) => ({
    name: v.name,
    data_type: `TYPE_${tensorMetadata(v).datatype}`,
    dims: batching ? tensorMetadata(v).shape.slice(1) : tensorMetadata(v).shape,
  });
  // No policy in config.pbtxt (or no file): this server serves every version (model-config.ts servedVersions).
  const policy = settings.versionPolicy ?? { kind: 'all' };
  return {
    name: model.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy:
      policy.kind === 'all'
        ? { all: {} }
        : policy.kind === 'specific'
          ? { specific: { versions: policy.versions } }
          : { latest: { num_versions: policy.numVersions } },
    max_batch_size: batching ? model.maxBatch : 0,
    input: [{ ...tensor(model.signature.input), format: 'FORMAT_NONE' }],
    output: model.signature.outputs.map(tensor),
    ...(batching
      ? { dynamic_batching: { max_queue_delay_microseconds: Math.round(model.batcher.delayMs * 1000) } }
      : {}),
    instance_group: [{ name: model.name, kind: model.provider === 'cpu' ? 'KIND_CPU' : 'KIND_GPU', count: 1 }],
    default_model_filename: 'model.onnx',
  };
}

/** The version numbers of `name` served now, ascending. */
export const servedNumbers = (repository: ModelRepository, name: string) =>
  repository.servedVersions(name).map((v) => v.version);

const json = <S extends z.ZodType>(schema: S, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const serverRoute = createRoute({
  method: 'get',
  path: '/v2',
  tags: ['v2'],
  summary: 'Server metadata',
  responses: { 200: json(ServerMetadataSchema, 'Server name and version') },
});

const liveRoute = createRoute({
  method: 'get',
  path: '/v2/health/live',
  tags: ['v2'],
  summary: 'Liveness: the process answers',
  responses: { 200: json(z.object({ live: z.boolean() }), 'Live') },
});

const readyRoute = createRoute({
  method: 'get',
  path: '/v2/health/ready',
  tags: ['v2'],
  summary: 'Readiness: the models found at start have loaded (at least one), and the server is not stopping',
  responses: {
    200: json(z.object({ ready: z.boolean() }), 'Ready'),
    400: json(
      z.object({ ready: z.boolean() }),
      'No model loaded yet (not ready is a 4xx in the Open Inference Protocol)',
    ),
  },
});

const metadataRoute = (base: string) =>
  createRoute({
    method: 'get',
    path: base,
    tags: ['v2'],
    summary: "The model's own inputs and outputs",
    request: modelParams(base),
    responses: {
      200: json(ModelMetadataSchema, 'Model metadata'),
      400: protocolErrorResponse('Malformed version (invalid_version)'),
      404: protocolErrorResponse('Unknown model or version'),
    },
  });

const configRoute = (base: string) =>
  createRoute({
    method: 'get',
    path: `${base}/config`,
    tags: ['v2'],
    summary: "The version's configuration, as Triton's model configuration extension gives it",
    request: modelParams(base),
    responses: {
      200: json(z.record(z.string(), z.unknown()), 'inference.ModelConfig as JSON'),
      400: protocolErrorResponse('Malformed version (invalid_version)'),
      404: protocolErrorResponse('Unknown model or version'),
    },
  });

const modelReadyRoute = (base: string) =>
  createRoute({
    method: 'get',
    path: `${base}/ready`,
    tags: ['v2'],
    summary: 'Model readiness',
    request: modelParams(base),
    responses: {
      200: json(ModelReadySchema, 'Ready'),
      400: json(ModelReadySchema, 'Known but not loaded (see /api/models for why)'),
      404: protocolErrorResponse('Unknown model'),
    },
  });

/** Inference: the body (JSON, or the binary tensor extension's bytes) is read by `readsBody`, never by a validator. */
const inferRoute = (base: string, maxBodyBytes: number) =>
  createRoute({
    method: 'post',
    path: `${base}/infer`,
    tags: ['v2'],
    summary: 'Run the model as it is on the tensors it declares',
    middleware: readsBody((c) => readInferRequest(c, maxBodyBytes)),
    request: {
      ...modelParams(base),
      body: {
        content: {
          'application/json': { schema: schemaRef('InferenceRequest') },
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
      ...protocolCommonErrors,
      404: protocolErrorResponse('Unknown model or version'),
      422: protocolErrorResponse('The model answered NaN or infinity for this input'),
      503: protocolErrorResponse(
        'The model failed (over its run budget, crashed, wrong rows), its queue is full (queue_full, Retry-After), or the server is stopping',
      ),
    },
  });

export function v2Routes(options: V2RouteOptions): OpenAPIHono {
  const { repository, maxBodyBytes } = options;
  const app = new OpenAPIHono();
  app.openapi(serverRoute, (c) =>
    c.json({ name: options.serverName, version: options.serverVersion, extensions: V2_EXTENSIONS }, 200),
  );
  app.openapi(liveRoute, (c) => c.json({ live: true }, 200));
  app.openapi(readyRoute, (c) =>
    // Not ready is a 4xx, as the Open Inference Protocol says (Triton answers 400).
    repository.ready ? c.json({ ready: true }, 200) : c.json({ ready: false }, 400),
  );
  for (const base of ['/v2/models/{model}', '/v2/models/{model}/versions/{version}']) {
    app.openapi(metadataRoute(base), (c) => {
      const { model, version } = c.req.valid('param');
      return withModel(repository, model, version, async (m) =>
        c.json(modelMetadata(m, servedNumbers(repository, m.name)), 200),
      );
    });
    app.openapi(configRoute(base), (c) => {
      const { model, version } = c.req.valid('param');
      return withModel(repository, model, version, async (m) =>
        c.json(modelConfig(m, repository.settingsOf(m.name)), 200),
      );
    });
    app.openapi(modelReadyRoute(base), (c) => {
      const { model: name, version } = c.req.valid('param');
      const versions = repository.versions(name);
      if (versions.length === 0) throw new HttpError(404, 'model_not_found', repository.absentBecause(name));
      const ready =
        !repository.stopping &&
        (version === undefined
          ? versions.some((v) => v.ready)
          : Boolean(versions.find((v) => v.version === version)?.ready));
      return ready ? c.json({ name, ready }, 200) : c.json({ name, ready }, 400);
    });
    app.openapi(inferRoute(base, maxBodyBytes), (c) => {
      const { model: name, version } = c.req.valid('param');
      const request = c.var.body;
      return withModel(repository, name, version, (model) =>
        model.stats.request(async () => {
          const { count, data } = inputTensor(model, request);
          const wanted = requestedOutputs(model, request.body);
          // Held while the model runs; then the answer is weighed against what its client holds by then, and
          // held again while it is built (over several event-loop turns: json-answer.ts) until it is written.
          const expected = expectedAnswerBytes(model, wanted, count);
          const signal = clientSignal(c);
          const release = reserveAnswer(c, expected);
          const client = remoteAddress(c);
          const { outputs, timings } = await model.batcher.inferTimed(data, count, signal, client).finally(release);
          assertFiniteOutputs(
            model,
            Object.fromEntries(wanted.map(({ name }) => [name, outputs[name] as Float32Array])),
          );
          const releaseBuilt = reserveAnswer(c, expected);
          const value = await inferResponse(model, request.body, wanted, outputs, count, {
            signal,
            client,
          }).finally(releaseBuilt);
          return { value, count, timings };
        }),
      );
    });
  }
  return app;
}
