// Builds the optional native kernels (node/native-kernels.ts) with this machine's compiler, for its CPU:
// `npm install` runs it (the root package's install script), and `npm run build:native` again by hand.
// Never fails the install: without a compiler, Node's headers or node-gyp, training runs the pure-ORT graph.
// Nothing is downloaded: node-gyp gets the installed Node's own headers (--nodedir).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const skip = (why) => {
  console.log(`native kernels not built: ${why}; training will use the pure-ORT graph`);
  process.exit(0);
};

if (process.env.MNIST_ONNX_CNN_NATIVE === '0') skip('MNIST_ONNX_CNN_NATIVE=0');

/** node-gyp's entry: npm's own copy (npm names it to install scripts), else one beside npm or in node_modules. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath &&
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

const gyp = nodeGyp();
if (!gyp) skip('node-gyp not found');
const nodedir = join(dirname(process.execPath), '..');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) skip(`no Node headers under ${nodedir}/include/node`);

const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: here, encoding: 'utf8' });
if (result.status !== 0) {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n');
  console.log(output);
  skip(`node-gyp failed (exit ${result.status ?? result.signal ?? result.error?.message})`);
}
console.log('native kernels built: native/build/Release/mnist_native.node');
