/**
 * The bodies /predict takes, one table: content type → how to read it, and its OpenAPI schema. The
 * route's OpenAPI content map and its 415 message both come from this table, so they can't drift apart.
 */
import type { RouteConfig } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../core/contract.ts';
import { BlankImageError, preprocessRgba } from '../core/digits/digit.ts';
import { readBody, readJson, shapeKey, zodMessage } from './body.ts';
import { remoteAddress } from './body-budget.ts';
import { HttpError } from './errors.ts';
import { decodeImage, ImageError } from './images.ts';
import { multipartFile } from './multipart-file.ts';
import { checkMultipartParts, multipartBoundary } from './multipart-limits.ts';
import { schemaRef } from './route-body.ts';
import { MAX_PREDICT_IMAGES, PredictBodies, type PredictJson } from './schemas.ts';

/** `count` images of 784 raw intensities in [0,1]; `batch`: the client sent a list (answer with a list). */
export interface PredictInput {
  images: Float32Array;
  count: number;
  batch: boolean;
}

/** One media type of an OpenAPI request body, as @hono/zod-openapi takes it. */
type ZodMediaTypeObject = NonNullable<NonNullable<RouteConfig['request']>['body']>['content'][string];

export interface BodyFormat {
  /** The content type, lower case, without parameters. */
  type: string;
  /** Its OpenAPI media-type object. */
  openapi: ZodMediaTypeObject;
  read(c: Context, limit: number): Promise<PredictInput>;
}

const binary = (description: string): ZodMediaTypeObject => ({
  schema: { type: 'string', format: 'binary', description },
});
const one = (images: Float32Array): PredictInput => ({ images, count: 1, batch: false });

const STATUS_OF: Record<ImageError['code'], 413 | 415 | 400 | 422 | 503> = {
  image_too_large: 413,
  extreme_aspect_ratio: 422,
  unsupported_media_type: 415,
  undecodable_image: 400,
  busy: 503,
};

/** An uploaded image → one model input, through the shared digit preprocessing. */
async function imageInput(c: Context, bytes: Uint8Array): Promise<PredictInput> {
  if (bytes.length === 0) throw new HttpError(400, 'empty_body', 'the image is empty');
  try {
    const image = await decodeImage(bytes, remoteAddress(c));
    return one(preprocessRgba(image.rgba, image.width, image.height));
  } catch (error) {
    if (error instanceof ImageError) throw new HttpError(STATUS_OF[error.code], error.code, error.message);
    if (error instanceof BlankImageError) throw new HttpError(422, 'blank_image', error.message);
    throw error;
  }
}

/** Copy one validated image (784 numbers, or 28 rows of 28) into `out` at image `index`. */
function copyPixels(pixels: number[] | number[][], out: Float32Array, index: number): void {
  const offset = index * IMAGE_PIXELS;
  if (pixels.length === IMAGE_PIXELS) {
    out.set(pixels as number[], offset);
    return;
  }
  (pixels as number[][]).forEach((row, y) => {
    out.set(row, offset + y * IMAGE_SIDE);
  });
}

const SHAPES = Object.keys(PredictBodies) as (keyof typeof PredictBodies)[];

async function readPredictJson(c: Context, limit: number): Promise<PredictInput> {
  const json = await readJson(c, limit);
  // Pick the body's shape by its key, so a mistake is reported against that shape.
  const key = shapeKey(json, SHAPES);
  if (!key) throw new HttpError(400, 'invalid_request', 'body must be an object with "pixels", "inputs" or "image"');
  const parsed = PredictBodies[key].safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'invalid_request', zodMessage(parsed.error));
  const body = parsed.data as PredictJson;
  if ('pixels' in body) {
    const images = new Float32Array(IMAGE_PIXELS);
    copyPixels(body.pixels, images, 0);
    return one(images);
  }
  if ('inputs' in body) {
    const images = new Float32Array(body.inputs.length * IMAGE_PIXELS);
    body.inputs.forEach((p, i) => {
      copyPixels(p, images, i);
    });
    return { images, count: body.inputs.length, batch: true };
  }
  const base64 = body.image.replace(/^data:image\/[a-z]+;base64,/, '');
  if (!/^[A-Za-z0-9+/=\s]+$/.test(base64)) throw new HttpError(400, 'invalid_base64', "'image' is not base64");
  return imageInput(c, new Uint8Array(Buffer.from(base64, 'base64')));
}

async function readFloat32(c: Context, limit: number): Promise<PredictInput> {
  // N images as raw little-endian float32, row-major [N, 784]: no JSON to parse, for throughput.
  const bytes = await readBody(c, limit);
  const imageBytes = IMAGE_PIXELS * 4;
  if (bytes.length === 0 || bytes.length % imageBytes !== 0) {
    throw new HttpError(
      400,
      'invalid_shape',
      `a float32 body must hold whole images of ${IMAGE_PIXELS} values (${imageBytes} bytes each); got ${bytes.length} bytes`,
    );
  }
  const count = bytes.length / imageBytes;
  // As JSON's list: a body limit raised for large images elsewhere must not lift the per-request count.
  if (count > MAX_PREDICT_IMAGES)
    throw new HttpError(
      400,
      'too_many_images',
      `a request holds at most ${MAX_PREDICT_IMAGES} images; got ${count}: split the batch`,
    );
  const images = new Float32Array(new Uint8Array(bytes).buffer);
  const bad = images.findIndex((v) => !(v >= 0 && v <= 1));
  if (bad >= 0) throw new HttpError(400, 'invalid_value', `value ${bad} is ${images[bad]}; expected numbers in [0,1]`);
  return { images, count, batch: count > 1 };
}

async function readMultipart(c: Context, limit: number): Promise<PredictInput> {
  // Read within the limit first, then parse those bytes: the limit counts the whole multipart body.
  const read = await readBody(c, limit);
  const bytes = Buffer.from(read.buffer, read.byteOffset, read.length);
  const boundary = multipartBoundary(c.req.header('content-type') ?? '');
  // Bounded before parsing (multipart-limits.ts), and parsed with the very boundary that was checked.
  checkMultipartParts(bytes, boundary);
  const file = await multipartFile(bytes, boundary).catch(() => {
    throw new HttpError(400, 'invalid_multipart', 'cannot parse the multipart body');
  });
  if (file === undefined)
    throw new HttpError(400, 'missing_file', "multipart body needs a 'file' field with the image");
  return imageInput(c, file);
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];

export const PREDICT_FORMATS: readonly BodyFormat[] = [
  // By reference, not the zod schema: see route-body.ts.
  { type: 'application/json', openapi: { schema: schemaRef('PredictRequest') }, read: readPredictJson },
  {
    type: 'application/octet-stream',
    openapi: binary(`N×${IMAGE_PIXELS} little-endian float32 in [0,1]`),
    read: readFloat32,
  },
  ...IMAGE_TYPES.map((type) => ({
    type,
    openapi: binary('a photo or drawing of one digit, any size, dark-on-light or light-on-dark'),
    read: async (c: Context, limit: number) => imageInput(c, await readBody(c, limit)),
  })),
  {
    type: 'multipart/form-data',
    openapi: {
      schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } }, required: ['file'] },
    },
    read: readMultipart,
  },
];

/** The OpenAPI request-body content map of /predict. */
export const predictContent = Object.fromEntries(PREDICT_FORMATS.map((f) => [f.type, f.openapi]));

/** Read a /predict body by its content type; 415 (listing what we take) for any other. */
export function readPredictBody(c: Context, limit: number): Promise<PredictInput> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const format = PREDICT_FORMATS.find((f) => f.type === type);
  if (!format) {
    const names = PREDICT_FORMATS.map((f) => f.type);
    throw new HttpError(
      415,
      'unsupported_media_type',
      `send ${names.slice(0, -1).join(', ')} or ${names.at(-1)}, not '${type.slice(0, 60) || 'nothing'}'`,
    );
  }
  return format.read(c, limit);
}
