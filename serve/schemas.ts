/** Request and response schemas: they validate bodies and generate /openapi.json. */
import { z } from '@hono/zod-openapi';
import { IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES } from '../core/contract.ts';
import { describeValue } from './body.ts';

const isIntensity = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1; // NaN fails both

/** Why `value` is not one image, or undefined when it is (one tight loop: zod's per-element checks cost 5× more). */
export function pixelsProblem(value: unknown): string | undefined {
  const side = IMAGE_SIDE;
  if (!Array.isArray(value)) return `expected an array of ${IMAGE_PIXELS} numbers or ${side} rows of ${side}`;
  if (value.length === IMAGE_PIXELS) {
    for (let i = 0; i < IMAGE_PIXELS; i++)
      if (!isIntensity(value[i])) return `pixel ${i} is ${describeValue(value[i])}; expected a number in [0,1]`;
    return undefined;
  }
  if (value.length === side) {
    for (let y = 0; y < side; y++) {
      const row: unknown = value[y];
      if (!Array.isArray(row) || row.length !== side) return `row ${y} must be an array of ${side} numbers`;
      for (let x = 0; x < side; x++)
        if (!isIntensity(row[x])) return `pixel [${y}][${x}] is ${describeValue(row[x])}; expected a number in [0,1]`;
    }
    return undefined;
  }
  return `expected ${IMAGE_PIXELS} pixels or ${side} rows, got ${describeValue(value)}`;
}

/** One image: 784 intensities, or 28 rows of 28. */
export const PixelsSchema = z
  .custom<number[] | number[][]>((value) => pixelsProblem(value) === undefined, {
    error: (issue) => pixelsProblem(issue.input) ?? 'invalid pixels',
  })
  .openapi({
    description: '784 intensities in [0,1] (white ink on black, MNIST-centred), or 28 rows of 28',
    type: 'array',
    items: { type: 'number', minimum: 0, maximum: 1 },
    minItems: IMAGE_PIXELS,
    maxItems: IMAGE_PIXELS,
  });

/** The most images one /predict request takes, in any format (a client splits larger batches). */
export const MAX_PREDICT_IMAGES = 1024;

/** The three JSON bodies /predict takes, by their one key. */
export const PredictBodies = {
  pixels: z.object({ pixels: PixelsSchema }).strict(),
  inputs: z.object({ inputs: z.array(PixelsSchema).min(1).max(MAX_PREDICT_IMAGES) }).strict(),
  image: z
    .object({
      image: z.string().min(1).openapi({ description: 'base64 PNG or JPEG (a data: URL prefix is accepted)' }),
    })
    .strict(),
};

export const PredictJsonSchema = z
  .union([PredictBodies.pixels, PredictBodies.inputs, PredictBodies.image])
  .openapi('PredictRequest');

export const PredictionSchema = z
  .object({
    model: z.string(),
    version: z.number().int(),
    prediction: z.number().int().min(0).max(9),
    probabilities: z.array(z.number()).length(NUM_CLASSES),
    latencyMs: z.number(),
  })
  .openapi('Prediction');

export const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');

/** A refusal on the Open Inference Protocol's routes: its `{ "error": "<message>" }`, our code beside it. */
export const ProtocolErrorSchema = z.object({ error: z.string(), code: z.string() }).openapi('ProtocolError');

// Elements are not checked here (flattenTensorData does, in one loop): a body-sized array yields no issues,
// and is not copied (z.array copies every element: ~15 ms for a MiB of JSON).
const tensorData = z
  .custom<unknown[]>((value) => Array.isArray(value), { error: 'data must be an array' })
  .openapi({ type: 'array', items: {} });

/**
 * Every array and object a client sends is bounded, checked before its elements: zod gathers one issue per
 * bad element and spreads them into an array (`push(...issues)`), so 130,000 bad shape entries overflowed
 * the stack (a 500) and 524,000 outputs held the event loop for a second and 260 MB.
 */
export const INFER_LIMITS = {
  /** Tensors in, and outputs asked for. */
  tensors: 16,
  /** Dimensions of a tensor: served models take [N,1,28,28]. */
  rank: 8,
  /** Keys of a parameters object (Triton's are a handful). */
  parameters: 32,
};

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A parameters object: its keys counted before anything else, and not copied (a `__proto__` key stays a key). */
const Parameters = z
  .custom<Record<string, unknown>>((v) => isPlainObject(v) && Object.keys(v).length <= INFER_LIMITS.parameters, {
    error: `parameters must be an object of at most ${INFER_LIMITS.parameters} entries`,
  })
  .openapi({ type: 'object', additionalProperties: {}, maxProperties: INFER_LIMITS.parameters });

export const InferRequestSchema = z
  .object({
    id: z.string().optional(),
    parameters: Parameters.optional(),
    inputs: z
      .array(
        z.object({
          name: z.string(),
          shape: z.array(z.number().int().nonnegative()).max(INFER_LIMITS.rank),
          datatype: z.string(),
          data: tensorData.optional().openapi({ description: 'Absent when parameters.binary_data_size is given' }),
          parameters: Parameters.optional().openapi({
            description: 'binary_data_size: bytes of this tensor after the JSON header (binary extension)',
          }),
        }),
      )
      .min(1)
      .max(INFER_LIMITS.tensors),
    outputs: z
      .array(
        z.object({
          name: z.string(),
          parameters: Parameters.optional().openapi({
            description: 'binary_data: true to get this output as raw bytes (binary extension)',
          }),
        }),
      )
      .max(INFER_LIMITS.tensors)
      .optional(),
  })
  .openapi('InferenceRequest');

export const InferResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    outputs: z.array(
      z.object({
        name: z.string(),
        shape: z.array(z.number()),
        datatype: z.string(),
        data: z.array(z.number()).optional().openapi({ description: 'Absent for an output sent as binary data' }),
        parameters: z.object({ binary_data_size: z.number().int() }).optional(),
      }),
    ),
  })
  .openapi('InferenceResponse');

const TensorMetadataSchema = z.object({
  name: z.string(),
  datatype: z.string().openapi({ example: 'FP32' }),
  shape: z.array(z.number().int()).openapi({ description: '-1 for a dynamic dimension' }),
});

export const ModelMetadataSchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.string(),
    inputs: z.array(TensorMetadataSchema),
    outputs: z.array(TensorMetadataSchema),
  })
  .openapi('ModelMetadata');

export const ServerMetadataSchema = z
  .object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) })
  .openapi('ServerMetadata');

export const ModelReadySchema = z.object({ name: z.string(), ready: z.boolean() }).openapi('ModelReady');

export const ModelListSchema = z
  .array(
    z.object({
      name: z.string(),
      versions: z.array(
        z.object({
          version: z.number().int(),
          ready: z.boolean(),
          provider: z.string().optional(),
          metadata: z.record(z.string(), z.string()).optional().openapi({
            description:
              "The model's metadata_props: at most 32 entries, keys of at most 64 characters; values past 512 characters are cut, ending in '…'",
          }),
          error: z.string().optional().openapi({ description: 'Why this version is not served' }),
        }),
      ),
    }),
  )
  .openapi('ModelList');

const DurationSchema = z.object({
  count: z.number().int(),
  ns: z.number().int().openapi({ description: 'Cumulative nanoseconds' }),
});

export const ModelStatsSchema = z
  .object({
    model_stats: z.array(
      z.object({
        name: z.string(),
        version: z.string(),
        last_inference: z.number().int().openapi({ description: 'Milliseconds since the epoch (0: none yet)' }),
        inference_count: z.number().int().openapi({ description: 'Images inferred by successful requests' }),
        execution_count: z.number().int().openapi({ description: 'Model runs (one batch of requests is one)' }),
        inference_stats: z.object({
          success: DurationSchema,
          fail: DurationSchema,
          queue: DurationSchema,
          compute_input: DurationSchema,
          compute_infer: DurationSchema,
          compute_output: DurationSchema,
          cache_hit: DurationSchema,
          cache_miss: DurationSchema,
        }),
        batch_stats: z.array(
          z.object({
            batch_size: z.number().int(),
            compute_input: DurationSchema,
            compute_infer: DurationSchema,
            compute_output: DurationSchema,
          }),
        ),
      }),
    ),
  })
  .openapi('ModelStatistics');

export const RepositoryIndexSchema = z
  .array(
    z.object({
      name: z.string(),
      version: z.string(),
      state: z.enum(['READY', 'UNAVAILABLE', 'LOADING']),
      reason: z.string().openapi({ description: 'Why it is not served (empty when READY or LOADING)' }),
    }),
  )
  .openapi('RepositoryIndex');

export const IndexRequestSchema = z
  .object({
    ready: z
      .boolean({ error: 'ready must be true or false' })
      .optional()
      .openapi({ description: 'true: only versions that are READY' }),
  })
  .openapi('RepositoryIndexRequest');

const isObjectOrNull = (v: unknown): v is Record<string, unknown> | null =>
  v === null || (typeof v === 'object' && !Array.isArray(v));

export const ControlRequestSchema = z
  .object({
    // Not z.record: it copies the object, and a `__proto__` key would vanish instead of being refused.
    parameters: z
      .custom<Record<string, unknown> | null>(isObjectOrNull, { error: 'parameters must be an object' })
      .optional()
      .openapi({ type: 'object', additionalProperties: {} }),
  })
  .openapi('ModelControlRequest');

export type PredictJson = z.infer<typeof PredictJsonSchema>;
export type Prediction = z.infer<typeof PredictionSchema>;
export type InferRequest = z.infer<typeof InferRequestSchema>;
