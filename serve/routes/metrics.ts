/** GET /metrics: Prometheus text format. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Metrics } from '../metrics.ts';

const route = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['operations'],
  summary: 'Prometheus metrics: requests, latency, batch sizes, load failures, repository scan errors',
  responses: { 200: { description: 'Prometheus text', content: { 'text/plain': { schema: z.string() } } } },
});

export function metricsRoutes({ metrics }: { metrics: Metrics }): OpenAPIHono {
  const app = new OpenAPIHono();
  // Requests that arrive while a rendering is under way share it: a flood of scrapes (pipelined on
  // a thousand connections) costs one rendering at a time, and every answer is still current.
  let rendering: Promise<string> | undefined;
  const render = () => {
    rendering ??= metrics.registry.metrics().finally(() => {
      rendering = undefined;
    });
    return rendering;
  };
  app.openapi(route, async (c) => c.text(await render(), 200, { 'Content-Type': metrics.registry.contentType }));
  return app;
}
