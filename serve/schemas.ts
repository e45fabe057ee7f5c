/** Request and response schemas: they validate bodies and generate /openapi.json. */
import { z } from '@hono/zod-openapi';

const intensity = z.number().finite().min(0).max(1);

/** One image: 784 intensities, or 28 rows of 28. */
export const PixelsSchema = z
  .union([z.array(intensity).length(784), z.array(z.array(intensity).length(28)).length(28)])
  .openapi({ description: '784 intensities in [0,1] (white ink on black, MNIST-centred), or 28 rows of 28' });

export const PredictJsonSchema = z
  .union([
    z.object({ pixels: PixelsSchema }).strict(),
    z.object({ inputs: z.array(PixelsSchema).min(1).max(1024) }).strict(),
    z
      .object({
        image: z.string().min(1).openapi({ description: 'base64 PNG or JPEG (a data: URL prefix is accepted)' }),
      })
      .strict(),
  ])
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
