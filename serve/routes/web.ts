/**
 * The browser side: the API docs (Swagger UI from the npm-installed swagger-ui-dist, so /docs works
 * offline) and the built web demo. The demo's files are read per request, so a rebuilt demo is served
 * without a restart; when it is not built, / says how to build it. Swagger UI's files (an installed
 * package: they never change) are read once and sent as views.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { HttpError } from '../errors.ts';
import type { LargeResponses } from '../large-responses.ts';
import { viewStream } from '../large-responses.ts';

export interface WebRouteOptions {
  /** The built web demo (vite's outDir). */
  webRoot?: string;
  /** Where the OpenAPI document is served. */
  specPath: string;
  /** The cap on large bodies in flight: the demo's wasm files (~27 MB) count as large. */
  largeResponses?: LargeResponses;
}

const SWAGGER_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const SWAGGER_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const docsPage = () => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>mnist-onnx-cnn API</title>
<link rel="icon" href="/docs/assets/favicon-32x32.png"><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body></html>`;

export function webRoutes(options: WebRouteOptions): Hono {
  const app = new Hono();
  const assets = new Map<string, Promise<Uint8Array>>();
  const asset = (file: string) => {
    let bytes = assets.get(file);
    if (!bytes) {
      bytes = readFile(join(SWAGGER_DIR, file));
      assets.set(file, bytes);
      bytes.catch(() => assets.delete(file));
    }
    return bytes;
  };
  app.get('/docs', (c) => c.html(docsPage()));
  // Inline scripts would need a CSP exception; the initializer is a file of its own.
  app.get('/docs/init.js', (c) =>
    c.body(
      `window.ui = SwaggerUIBundle({ url: ${JSON.stringify(options.specPath)}, dom_id: '#swagger-ui', deepLinking: true, presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: 'StandaloneLayout' });`,
      200,
      { 'Content-Type': 'text/javascript; charset=utf-8' },
    ),
  );
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    const type = Object.hasOwn(SWAGGER_FILES, file) ? SWAGGER_FILES[file] : undefined;
    if (!type) throw new HttpError(404, 'not_found', 'no such docs asset');
    const bytes = await asset(file);
    return c.body(viewStream([bytes]), 200, {
      'Content-Type': type,
      'Content-Length': String(bytes.byteLength),
      'Cache-Control': 'public, max-age=86400',
    });
  });

  const { webRoot } = options;
  if (webRoot) {
    // Cross-origin isolation lets onnxruntime-web use wasm threads.
    app.use('*', async (c, next) => {
      await next();
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
      c.header('Cross-Origin-Embedder-Policy', 'require-corp');
    });
    // onnxruntime-web's wasm is ~27 MB: clients that never read it must not hold unbounded memory.
    app.get('*', async (c, next) => {
      const busy = c.req.path.endsWith('.wasm') ? options.largeResponses?.admit(c) : undefined;
      return busy ?? next();
    });
    app.get('*', serveStatic({ root: webRoot }));
    app.get('/', (c) => {
      if (existsSync(join(webRoot, 'index.html'))) throw new HttpError(404, 'not_found', 'no route for GET /');
      return c.html(
        '<!doctype html><title>Web demo not built</title><p>The web demo is not built yet: run <code>npm run build:web</code> (or <code>npm start</code>); this page then serves it, no restart needed. The API is up: <a href="/docs">/docs</a>.</p>',
        503,
      );
    });
  }
  return app;
}
