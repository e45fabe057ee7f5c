/** GET /metrics: Prometheus text format. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Metrics } from '../metrics.ts';
import { mount } from '../openapi.ts';

export function metricsRoutes({ metrics }: { metrics: Metrics }): OpenAPIHono {
  const app = new OpenAPIHono();
  mount(
    app,
    createRoute({
      method: 'get',
      path: '/metrics',
      tags: ['operations'],
      summary: 'Prometheus metrics: requests, latency, batch sizes, load failures, repository scan errors',
      responses: { 200: { description: 'Prometheus text', content: { 'text/plain': { schema: z.string() } } } },
    }),
    async (c) => c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }),
  );
  return app;
}
