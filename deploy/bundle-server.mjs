/**
 * Bundles the server CLI (serve/cli.ts and the project modules it imports) into one ESM file for the
 * container, whose final stage has production dependencies only (no tsx). npm packages stay external:
 * they are resolved at run time from node_modules, native binaries (onnxruntime-node, sharp) included.
 *
 *   node deploy/bundle-server.mjs [outfile]     (default: dist/serve.mjs)
 *
 * Keep the bundle one folder below the project root (dist/): the server finds the web demo at
 * ../web-demo/dist relative to itself, as serve/cli.ts does.
 */
import { build } from 'esbuild';

const outfile = process.argv[2] ?? 'dist/serve.mjs';
await build({
  entryPoints: ['serve/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
console.log(`bundled the server into ${outfile}`);
