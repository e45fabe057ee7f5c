#include "blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "parallel.h"

namespace {

enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                       int);

struct Blas {
  Sgemm sgemm = nullptr;
  const char* name = nullptr;
};

const Blas& blas() {
  static Blas found;
  static std::once_flag once;
  std::call_once(once, [] {
    // OpenBLAS by its own names only: libblas.so.3 may be the reference BLAS behind Debian's alternatives.
    for (const char* file : {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib",
                             "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
                             "/usr/local/opt/openblas/lib/libopenblas.dylib"}) {
      void* lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
      if (!lib) continue;
      auto sgemm = reinterpret_cast<Sgemm>(dlsym(lib, "cblas_sgemm"));
      auto threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
      auto config = reinterpret_cast<char* (*)()>(dlsym(lib, "openblas_get_config"));
      if (!sgemm || !threads || !config) {
        dlclose(lib);
        continue;
      }
      // Every call runs on its caller's thread: the trainer's threads split the work, as for the other kernels.
      threads(1);
      found.sgemm = sgemm;
      found.name = config();
      return;
    }
  });
  return found;
}

}  // namespace

const char* blas_name() { return blas().name; }

void linear_weight_gradient(int64_t n, int64_t in, int64_t out, const float* x, const float* dy, float* dw,
                            int threads) {
  const Sgemm sgemm = blas().sgemm;
  if (in == 0 || out == 0) return;
  if (n == 0) return std::fill(dw, dw + in * out, 0.0f);  // no images: no gradient (and no K = 0 call)
  // Below ~0.5 M multiply-adds a thread's start costs more than its share saves.
  const int64_t enough = std::max<int64_t>(1, n * in * out / (1 << 19));
  // OpenBLAS serves a bounded number of concurrent callers (twice its build's MAX_THREADS, 64 on Debian),
  // and more threads than cores only queue: a caller's count is capped at both.
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int parts = int(std::min<int64_t>({threads, cores, 32, out, enough}));
  parallel(parts, [&](int part) {
    const int64_t begin = out * part / parts, end = out * (part + 1) / parts;
    // Row-major: dW[begin:end, :] = dY[:, begin:end]ᵀ · X.
    sgemm(kRowMajor, kTrans, kNoTrans, int(end - begin), int(in), int(n), 1.0f, dy + begin, int(out), x, int(in),
          0.0f, dw + begin * in, int(in));
  });
}
