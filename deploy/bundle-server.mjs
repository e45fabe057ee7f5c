/**
 * Bundles the server CLI (serve/cli.ts and the project modules it imports) into one ESM file for the
 * container, and beside it `model-runner.mjs`, the process each served model version runs in
 * (serve/runner/process.ts; the server looks for it next to itself) and the gRPC service's .proto, whose final stage has production dependencies only (no tsx). npm packages stay external:
 * they are resolved at run time from node_modules, native binaries (onnxruntime-node, sharp) included.
 *
 *   node deploy/bundle-server.mjs [outfile]     (default: dist/serve.mjs)
 *
 * Keep the bundle one folder below the project root (dist/): the server finds the web demo at
 * ../web-demo/dist relative to itself, as serve/cli.ts does.
 */
import { copyFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { build } from 'esbuild';

const outfile = process.argv[2] ?? 'dist/serve.mjs';
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
};
await build({ ...common, entryPoints: ['serve/cli.ts'], outfile });
await build({
  ...common,
  entryPoints: ['serve/runner/process.ts'],
  outfile: join(dirname(outfile), 'model-runner.mjs'),
});
// The gRPC service definition and the model configuration schema it imports are read at run time from beside
// the bundle.
for (const proto of ['serve/grpc/grpc_predict_v2.proto', 'node/triton/model_config.proto'])
  copyFileSync(proto, join(dirname(outfile), basename(proto)));
console.log(`bundled the server into ${outfile} (and its model runner beside it)`);
