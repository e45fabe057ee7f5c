import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// Cross-origin isolation lets onnxruntime-web run wasm with threads.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: resolve(import.meta.dirname),
  // ORT ships its own .wasm next to its .mjs; pre-bundling would serve HTML in their place.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: {
    headers: isolation,
    // The pages import the portable core and the ONNX library beside web-demo/ (and packages from node_modules).
    fs: { allow: ['.', '../core', '../onnx', '../node_modules'].map((dir) => resolve(import.meta.dirname, dir)) },
    proxy: { '/api': 'http://127.0.0.1:8080', '/predict': 'http://127.0.0.1:8080', '/models': 'http://127.0.0.1:8080' },
  },
  preview: { headers: isolation },
  // ORT-web in the training worker loads its wasm glue as an ES module.
  worker: { format: 'es' },
  build: {
    outDir: resolve(import.meta.dirname, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    // Two pages: the draw page at / and the training page at /train (train/index.html).
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        train: resolve(import.meta.dirname, 'train/index.html'),
      },
    },
  },
});
