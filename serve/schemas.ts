/** Request and response schemas: they validate bodies and generate /openapi.json. */
import { z } from '@hono/zod-openapi';

const isIntensity = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1; // NaN fails both

/** Why `value` is not one image, or undefined when it is (one tight loop: zod's per-element checks cost 5× more). */
export function pixelsProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'expected an array of 784 numbers or 28 rows of 28';
  if (value.length === 784) {
    for (let i = 0; i < 784; i++)
      if (!isIntensity(value[i])) return `pixel ${i} is ${JSON.stringify(value[i])}; expected a number in [0,1]`;
    return undefined;
  }
  if (value.length === 28) {
    for (let y = 0; y < 28; y++) {
      const row: unknown = value[y];
      if (!Array.isArray(row) || row.length !== 28) return `row ${y} must be an array of 28 numbers`;
      for (let x = 0; x < 28; x++)
        if (!isIntensity(row[x])) return `pixel [${y}][${x}] is ${JSON.stringify(row[x])}; expected a number in [0,1]`;
    }
    return undefined;
  }
  return `expected 784 pixels or 28 rows, got an array of ${value.length}`;
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
    minItems: 784,
    maxItems: 784,
  });

/** The three JSON bodies /predict takes, by their one key. */
export const PredictBodies = {
  pixels: z.object({ pixels: PixelsSchema }).strict(),
  inputs: z.object({ inputs: z.array(PixelsSchema).min(1).max(1024) }).strict(),
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
    probabilities: z.array(z.number()).length(10),
    latencyMs: z.number(),
  })
  .openapi('Prediction');

export const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');

const tensorData = z.array(z.unknown());

export const InferRequestSchema = z
  .object({
    id: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    inputs: z
      .array(
        z.object({
          name: z.string(),
          shape: z.array(z.number().int().nonnegative()),
          datatype: z.string(),
          data: tensorData,
          parameters: z.record(z.string(), z.unknown()).optional(),
        }),
      )
      .length(1),
    outputs: z
      .array(z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() }))
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
        datatype: z.literal('FP32'),
        data: z.array(z.number()),
      }),
    ),
  })
  .openapi('InferenceResponse');

export type PredictJson = z.infer<typeof PredictJsonSchema>;
export type InferRequest = z.infer<typeof InferRequestSchema>;
