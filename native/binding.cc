// N-API binding (plain node_api.h: no dependency beyond Node's own headers), context-aware so that
// data-parallel worker threads can load it too.
//   convWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array(15), threads)
// shape = [N, C, H, W, M, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw]; dw is overwritten. Synchronous: the
// training step waits for it anyway, and a step runs one kernel at a time.
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conv_weight_gradient.h"

namespace {

napi_value fail(napi_env env, const std::string& message) {
  napi_throw_type_error(env, nullptr, ("convWeightGradient: " + message).c_str());
  return nullptr;
}

// The typed array's data and length, if it has the expected type.
bool typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) != napi_ok) return false;
  return type == want;
}

napi_value ConvWeightGradient(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 5) return fail(env, "expected (x, dy, dw, shape, threads)");
  void *x, *dy, *dw, *shape;
  size_t nx, ndy, ndw, nshape;
  if (!typed(env, argv[0], napi_float32_array, &x, &nx)) return fail(env, "x must be a Float32Array");
  if (!typed(env, argv[1], napi_float32_array, &dy, &ndy)) return fail(env, "dy must be a Float32Array");
  if (!typed(env, argv[2], napi_float32_array, &dw, &ndw)) return fail(env, "dw must be a Float32Array");
  if (!typed(env, argv[3], napi_int32_array, &shape, &nshape) || nshape != 15)
    return fail(env, "shape must be an Int32Array of 15");
  int32_t threads = 1;
  if (napi_get_value_int32(env, argv[4], &threads) != napi_ok || threads < 1) return fail(env, "threads must be ≥ 1");

  const int32_t* d = static_cast<const int32_t*>(shape);
  const ConvShape s{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14]};
  for (int i = 0; i < 15; i++)
    if (d[i] < (i == 11 || i == 12 ? 0 : 1)) return fail(env, "shape entries must be positive (pads ≥ 0)");
  // im2col bounds-checks every tap, so any Ho, Wo is memory-safe; only the lengths must match.
  const int64_t P = int64_t(s.ho) * s.wo, K = int64_t(s.c) * s.kh * s.kw;
  if (nx != size_t(int64_t(s.n) * s.c * s.h * s.w)) return fail(env, "x has the wrong length");
  if (ndy != size_t(int64_t(s.n) * s.m * P)) return fail(env, "dy has the wrong length");
  if (ndw != size_t(int64_t(s.m) * K)) return fail(env, "dw has the wrong length");

  // Kept between calls (per thread): a fresh multi-MB buffer would page-fault on every step.
  thread_local std::vector<float> scratch;
  const size_t need = conv_weight_gradient_scratch(s, threads);
  if (scratch.size() < need) scratch.resize(need);
  conv_weight_gradient(s, static_cast<const float*>(x), static_cast<const float*>(dy), static_cast<float*>(dw),
                       scratch.data(), threads);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "convWeightGradient", NAPI_AUTO_LENGTH, ConvWeightGradient, nullptr, &fn);
  napi_set_named_property(env, exports, "convWeightGradient", fn);
  return exports;
}
