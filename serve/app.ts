/**
 * The inference server's routes (Hono): /predict in every shape a client might send, the Open
 * Inference Protocol v2 (KServe/Triton REST), the model list for the web demo, health, metrics,
 * OpenAPI docs, and the built web demo at /.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { serveStatic } from '@hono/node-server/serve-static';
import { swaggerUI } from '@hono/swagger-ui';
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { errorBody, HttpError } from './errors.ts';
import { decodeImage, ImageError } from './images.ts';
import { infer } from './inference.ts';
import type { Metrics } from './metrics.ts';
import { BlankImageError, preprocessRgba } from './preprocess/digit.ts';
import { ModelNotFoundError, type ModelRepository, type ServedVersion } from './repository.ts';
import { mnistRoutes } from './routes/mnist.ts';
import {
  ErrorSchema,
  InferRequestSchema,
  InferResponseSchema,
  PredictBodies,
  PredictionSchema,
  type PredictJson,
  PredictJsonSchema,
} from './schemas.ts';

export interface AppOptions {
  repository: ModelRepository;
  metrics: Metrics;
  /** Bytes; also re-checked after reading, since body-limit middlewares have had bypasses. */
  maxBodyBytes?: number;
  cors?: boolean;
  /** The built web demo to serve at / (skipped when absent). */
  webRoot?: string;
  log?: (line: string) => void;
  serverVersion?: string;
}

const MiB = 1024 * 1024;

/** An OpenAPI response entry for our `{ error }` JSON bodies. */
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
});

function zodMessage(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.map(String).join('.') || 'body'}: ${issue.message}` : 'invalid request';
}

function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(raw))
    throw new HttpError(400, 'invalid_version', `version '${raw}' is not a positive integer`);
  return Number(raw);
}

function lookup(repository: ModelRepository, name?: string, version?: string): ServedVersion {
  try {
    return repository.get(name, parseVersion(version));
  } catch (error) {
    if (error instanceof ModelNotFoundError) throw new HttpError(404, 'model_not_found', error.message);
    throw error;
  }
}

/** Copy one image (784 numbers, or 28 rows of 28 — already validated) into `out` at `offset`. */
function copyPixels(pixels: number[] | number[][], out: Float32Array, offset = 0): void {
  if (pixels.length === 784) {
    out.set(pixels as number[], offset);
    return;
  }
  (pixels as number[][]).forEach((row, y) => {
    out.set(row, offset + y * 28);
  });
}

function imageToInput(bytes: Uint8Array): Float32Array {
  try {
    const image = decodeImage(bytes);
    return preprocessRgba(image.rgba, image.width, image.height);
  } catch (error) {
    if (error instanceof ImageError)
      throw new HttpError(
        error.code === 'image_too_large' ? 413 : error.code === 'unsupported_media_type' ? 415 : 400,
        error.code,
        error.message,
      );
    if (error instanceof BlankImageError) throw new HttpError(422, 'blank_image', error.message);
    throw error;
  }
}

async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > limit)
    throw new HttpError(413, 'payload_too_large', `request body is ${bytes.length} bytes; the limit is ${limit}`);
  return bytes;
}

/** Decode a /predict body into images (count × 784) and whether the client sent a batch. */
async function predictInputs(
  c: Context,
  limit: number,
): Promise<{ images: Float32Array; count: number; batch: boolean }> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'image/png' || type === 'image/jpeg') {
    return { images: imageToInput(await readBody(c, limit)), count: 1, batch: false };
  }
  if (type === 'multipart/form-data') {
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody();
    } catch {
      throw new HttpError(400, 'invalid_multipart', 'cannot parse the multipart body');
    }
    const file = form.file;
    if (!(file instanceof File))
      throw new HttpError(400, 'missing_file', "multipart body needs a 'file' field with the image");
    if (file.size > limit)
      throw new HttpError(413, 'payload_too_large', `file is ${file.size} bytes; the limit is ${limit}`);
    return { images: imageToInput(new Uint8Array(await file.arrayBuffer())), count: 1, batch: false };
  }
  if (type === 'application/octet-stream') {
    // N images as raw little-endian float32, row-major [N, 784]: no JSON to parse, for throughput.
    const bytes = await readBody(c, limit);
    if (bytes.length === 0 || bytes.length % (784 * 4) !== 0) {
      throw new HttpError(
        400,
        'invalid_shape',
        `a float32 body must hold whole images of 784 values (3136 bytes each); got ${bytes.length} bytes`,
      );
    }
    const images = new Float32Array(new Uint8Array(bytes).buffer);
    const bad = images.findIndex((v) => !(v >= 0 && v <= 1));
    if (bad >= 0)
      throw new HttpError(400, 'invalid_value', `value ${bad} is ${images[bad]}; expected numbers in [0,1]`);
    const count = images.length / 784;
    return { images, count, batch: count > 1 };
  }
  if (type !== 'application/json') {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `send application/json, application/octet-stream, image/png, image/jpeg or multipart/form-data, not '${type || 'nothing'}'`,
    );
  }
  const text = new TextDecoder().decode(await readBody(c, limit));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'invalid_json', `body is not valid JSON: ${(error as Error).message}`);
  }
  // Pick the body's shape by its key, so a mistake is reported against that shape (not as "no union member matched").
  const key =
    json && typeof json === 'object' && !Array.isArray(json)
      ? Object.keys(json).find((k) => k in PredictBodies)
      : undefined;
  if (!key) throw new HttpError(400, 'invalid_request', 'body must be an object with "pixels", "inputs" or "image"');
  const parsed = PredictBodies[key as keyof typeof PredictBodies].safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
  const body = parsed.data as PredictJson;
  if ('pixels' in body) {
    const images = new Float32Array(784);
    copyPixels(body.pixels, images);
    return { images, count: 1, batch: false };
  }
  if ('inputs' in body) {
    const images = new Float32Array(body.inputs.length * 784);
    body.inputs.forEach((p, i) => {
      copyPixels(p, images, i * 784);
    });
    return { images, count: body.inputs.length, batch: true };
  }
  const base64 = body.image.replace(/^data:image\/[a-z]+;base64,/, '');
  if (!/^[A-Za-z0-9+/=\s]+$/.test(base64)) throw new HttpError(400, 'invalid_base64', "'image' is not base64");
  return { images: imageToInput(new Uint8Array(Buffer.from(base64, 'base64'))), count: 1, batch: false };
}

/** v2 tensor data: flat or nested, FP32, finite values in [0, 1] (the models' input contract). */
function v2Images(request: (typeof InferRequestSchema)['_output']): { images: Float32Array; count: number } {
  const [tensor] = request.inputs;
  if (!tensor) throw new HttpError(400, 'invalid_request', 'inputs must hold one tensor');
  if (tensor.datatype !== 'FP32')
    throw new HttpError(400, 'invalid_datatype', `datatype must be FP32, got ${tensor.datatype}`);
  const shape = tensor.shape;
  const count = shape[0] ?? 0;
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const okShape =
    count > 0 && per === 784 && [[1, 28, 28], [28, 28], [784]].some((s) => s.join() === shape.slice(1).join());
  if (!okShape)
    throw new HttpError(
      400,
      'invalid_shape',
      `shape must be [N,1,28,28], [N,28,28] or [N,784] with N ≥ 1, got [${shape.join(',')}]`,
    );
  if (count > 1024) throw new HttpError(400, 'batch_too_large', `at most 1024 images per request, got ${count}`);
  const flat = (tensor.data as unknown[]).flat(4);
  if (flat.length !== count * 784)
    throw new HttpError(
      400,
      'invalid_shape',
      `data has ${flat.length} values; shape [${shape.join(',')}] needs ${count * 784}`,
    );
  const images = new Float32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
      throw new HttpError(400, 'invalid_value', `data[${i}] = ${JSON.stringify(v)}: values must be numbers in [0,1]`);
    }
    images[i] = v;
  }
  return { images, count };
}

function modelMetadata(model: ServedVersion) {
  return {
    name: model.name,
    versions: [String(model.version)],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: model.inputName, datatype: 'FP32', shape: [-1, 1, 28, 28] }],
    outputs: [
      { name: 'logits', datatype: 'FP32', shape: [-1, 10] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
    ],
  };
}

export function createApp(options: AppOptions): OpenAPIHono {
  const { repository, metrics } = options;
  const limit = options.maxBodyBytes ?? MiB;
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) return c.json(errorBody('invalid_request', zodMessage(result.error)), 400);
    },
  });

  app.use('*', async (c, next) => {
    const start = performance.now();
    await next();
    const route = c.req.routePath || 'unmatched';
    metrics.requests.inc({ route, method: c.req.method, status: String(c.res.status) });
    metrics.latency.observe({ route }, (performance.now() - start) / 1000);
    options.log?.(`${c.req.method} ${c.req.path} ${c.res.status} ${(performance.now() - start).toFixed(1)}ms`);
  });
  if (options.cors) app.use('*', cors());
  // Bodies are checked against `limit` after reading (a clean 413 the client can read). The middleware
  // only bounds memory: a body far past the limit is cut off while it streams in.
  app.use(
    '*',
    bodyLimit({
      maxSize: limit * 16,
      onError: (c) => c.json(errorBody('payload_too_large', `request body exceeds ${limit} bytes`), 413),
    }),
  );
  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json(errorBody(error.code, error.message), error.status);
    // Hono's own client errors, e.g. its JSON validator on a malformed body.
    if (error instanceof HTTPException && error.status < 500) {
      const code = /json/i.test(error.message) ? 'invalid_json' : 'bad_request';
      return c.json(errorBody(code, error.message || 'bad request'), error.status);
    }
    options.log?.(`internal error: ${(error as Error).stack ?? error}`);
    return c.json(errorBody('internal', 'internal server error'), 500);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));

  // /predict: JSON pixels or batches, base64 images, raw PNG/JPEG bodies, multipart uploads.
  const predict = async (c: Context) => {
    const model = lookup(repository, c.req.param('model'), c.req.param('version'));
    const start = performance.now();
    const { images, count, batch } = await predictInputs(c, limit);
    const results = await infer(model, images, count);
    const latencyMs = performance.now() - start;
    const answers = results.map((r) => ({
      model: model.name,
      version: model.version,
      prediction: r.prediction,
      probabilities: r.probabilities,
      latencyMs,
    }));
    return c.json(batch ? answers : answers[0]);
  };
  for (const path of ['/predict', '/predict/:model', '/predict/:model/:version']) app.post(path, predict);
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: '/predict/{model}/{version}',
    summary:
      'Read digits: JSON pixels or a batch, a base64 image, a raw PNG/JPEG body, or a multipart file (also at /predict and /predict/{model})',
    request: {
      body: {
        content: {
          'application/json': { schema: PredictJsonSchema },
          'image/png': { schema: { type: 'string', format: 'binary' } },
          'image/jpeg': { schema: { type: 'string', format: 'binary' } },
          'multipart/form-data': {
            schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } },
          },
          'application/octet-stream': {
            schema: { type: 'string', format: 'binary', description: 'N×784 little-endian float32 in [0,1]' },
          },
        },
      },
    },
    responses: {
      200: {
        description: 'The prediction (an array of them for `inputs`)',
        content: { 'application/json': { schema: PredictionSchema } },
      },
      400: errorResponse('Bad input'),
      404: errorResponse('Unknown model or version'),
      413: errorResponse('Too large'),
      415: errorResponse('Unsupported content type'),
    },
  });

  // The model list for the web demo.
  app.get('/api/models', (c) =>
    c.json(
      repository.names().map((name) => ({
        name,
        versions: repository.versions(name).map((v) => ({
          version: v.version,
          ready: v.ready,
          ...(v.served ? { provider: v.served.provider, metadata: v.served.metadata } : {}),
          ...(v.failure ? { error: v.failure.error } : {}),
        })),
      })),
    ),
  );

  // Model files for in-browser inference (only versions the repository knows and serves).
  app.get('/models/:model/:version/model.onnx', async (c) => {
    const model = lookup(repository, c.req.param('model'), c.req.param('version'));
    const bytes = await readFile(model.path);
    return c.body(new Uint8Array(bytes), 200, {
      'Content-Type': 'application/octet-stream',
      'Cache-Control': 'no-cache',
    });
  });

  // Open Inference Protocol v2.
  app.get('/v2', (c) => c.json({ name: 'mnist-onnx-cnn', version: options.serverVersion ?? '0.1.0', extensions: [] }));
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) =>
    repository.readyCount > 0 ? c.json({ ready: true }) : c.json({ ready: false }, 503),
  );
  const metadataHandler = (c: Context) =>
    c.json(modelMetadata(lookup(repository, c.req.param('model'), c.req.param('version'))));
  app.get('/v2/models/:model', metadataHandler);
  app.get('/v2/models/:model/versions/:version', metadataHandler);
  const readyHandler = (c: Context) => {
    const name = c.req.param('model') as string;
    const version = parseVersion(c.req.param('version'));
    const versions = repository.versions(name);
    if (versions.length === 0) throw new HttpError(404, 'model_not_found', `unknown model '${name}'`);
    const ready =
      version === undefined
        ? versions.some((v) => v.ready)
        : Boolean(versions.find((v) => v.version === version)?.ready);
    return c.json({ name, ready }, ready ? 200 : 503);
  };
  app.get('/v2/models/:model/ready', readyHandler);
  app.get('/v2/models/:model/versions/:version/ready', readyHandler);
  for (const path of ['/v2/models/{model}/infer', '/v2/models/{model}/versions/{version}/infer']) {
    const route = createRoute({
      method: 'post',
      path,
      summary: 'Open Inference Protocol v2 inference (KServe / Triton REST)',
      request: { body: { content: { 'application/json': { schema: InferRequestSchema } }, required: true } },
      responses: {
        200: {
          description: 'Logits and probabilities',
          content: { 'application/json': { schema: InferResponseSchema } },
        },
        400: errorResponse('Bad input'),
        404: errorResponse('Unknown model or version'),
      },
    });
    app.openapi(route, async (c) => {
      const params = c.req.param() as { model: string; version?: string };
      const model = lookup(repository, params.model, params.version);
      const request = c.req.valid('json');
      const { images, count } = v2Images(request);
      const results = await infer(model, images, count);
      const wanted = new Set(request.outputs?.map((o) => o.name) ?? ['logits', 'probabilities']);
      const outputs = [
        { name: 'logits', shape: [count, 10], datatype: 'FP32' as const, data: results.flatMap((r) => r.logits) },
        {
          name: 'probabilities',
          shape: [count, 10],
          datatype: 'FP32' as const,
          data: results.flatMap((r) => r.probabilities),
        },
      ].filter((o) => wanted.has(o.name));
      return c.json(
        {
          model_name: model.name,
          model_version: String(model.version),
          ...(request.id ? { id: request.id } : {}),
          outputs,
        },
        200,
      );
    });
  }

  app.get('/metrics', async (c) =>
    c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }),
  );
  app.doc('/openapi.json', {
    openapi: '3.0.0',
    info: { title: 'mnist-onnx-cnn inference server', version: options.serverVersion ?? '0.1.0' },
  });
  app.get('/docs', swaggerUI({ url: '/openapi.json' }));

  app.route('/', mnistRoutes());
  if (options.webRoot && existsSync(options.webRoot)) {
    // Cross-origin isolation lets onnxruntime-web use wasm threads.
    app.use('*', async (c, next) => {
      await next();
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
      c.header('Cross-Origin-Embedder-Policy', 'require-corp');
    });
    app.get('*', serveStatic({ root: options.webRoot }));
  }
  return app;
}
