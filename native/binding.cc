// N-API binding (plain node_api.h: no dependency beyond Node's own headers), context-aware so that
// data-parallel worker threads can load it too.
//   convWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array(15), threads)
//   convInputGradient(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: Int32Array(15), threads)
// shape = [N, C, H, W, M, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw]; dw (dx) is overwritten.
//   maxPoolGradient(x, dy, dx, [N, C, H, W, k, relu]), reluGradient(y, dy, dx), add(a, b, out), multiply(a, b, out),
//   biasGradient(dy, db, [N, C, P]), avgPoolGradient(dy, dx, [N, C, H, W, kh, kw, sh, sw, pt, pl, pb, pr]),
//   batchNormInputGradient(x, gamma, mean, invStd, dy, dx, [N, C, P, statistics, threads]),
//   batchNormScaleGradient(x, mean, invStd, dy, dgamma, [N, C, P, threads]): the routing.h steps, the last
//   array overwritten.
//   linearWeightGradient(x, dy, dw, [N, in, out], threads): blas.h (throws when no OpenBLAS was found), and
//   blasName(): the library, loaded on this first call, or null.
//   gather(src: Float32Array, out: Float32Array, map: Int32Array): out[j] = src[map[j]], 0 where map[j] is -1
//   (a weight's reorder into ORT's NCHWc filter layout, every step).
//   optimizerUpdate(kind: 0 sgd | 1 adam, hyper: Float32Array, lr, step, param, states: Float32Array[],
//                   parts: Float32Array[], shares: Float32Array | null): optimizer_update.h, in place.
// Synchronous: the training step waits for it anyway, and a step runs one kernel at a time.
#include <node_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "blas.h"
#include "conv_input_gradient.h"
#include "conv_weight_gradient.h"
#include "optimizer_update.h"
#include "parallel.h"
#include "routing.h"

namespace {

napi_value fail(napi_env env, const char* kernel, const std::string& message) {
  napi_throw_type_error(env, nullptr, (std::string(kernel) + ": " + message).c_str());
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

// The product of sizes as an element count, false when it overflows or could not be an array's length
// (hostile or mistaken shapes must fail as a JS error, not wrap around a length check).
bool count_of(std::initializer_list<int64_t> sizes, size_t* out) {
  constexpr uint64_t most = uint64_t(PTRDIFF_MAX) / sizeof(float);
  uint64_t total = 1;
  for (int64_t size : sizes) {
    if (size < 0 || __builtin_mul_overflow(total, uint64_t(size), &total) || total > most) return false;
  }
  *out = size_t(total);
  return true;
}

// A thread count (1 to MAX_THREADS: each kernel starts a fresh thread per part), or false with the JS error thrown.
bool thread_count(napi_env env, const char* kernel, int64_t value, int* threads) {
  if (value < 1 || value > MAX_THREADS)
    return fail(env, kernel, "threads must be 1 to " + std::to_string(MAX_THREADS)), false;
  *threads = int(value);
  return true;
}

// The same from a JS number argument.
bool thread_argument(napi_env env, const char* kernel, napi_value value, int* threads) {
  int32_t given = 0;
  if (napi_get_value_int32(env, value, &given) != napi_ok) given = 0;
  return thread_count(env, kernel, given, threads);
}

// Both kernels take (three float arrays, shape, threads); `lengths` gives each array's expected length.
struct Call {
  float* a[3];
  ConvShape s;
  int threads;
};

bool parse(napi_env env, napi_callback_info info, const char* kernel, const char* const names[3], Call* call,
           size_t (*length)(const ConvShape&, int)) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 5) return fail(env, kernel, "expected (three Float32Arrays, shape, threads)"), false;
  size_t lengths[3];
  for (int i = 0; i < 3; i++) {
    void* data;
    if (!typed(env, argv[i], napi_float32_array, &data, &lengths[i]))
      return fail(env, kernel, std::string(names[i]) + " must be a Float32Array"), false;
    call->a[i] = static_cast<float*>(data);
  }
  void* shape;
  size_t nshape;
  if (!typed(env, argv[3], napi_int32_array, &shape, &nshape) || nshape != 15)
    return fail(env, kernel, "shape must be an Int32Array of 15"), false;
  int threads = 1;
  if (!thread_argument(env, kernel, argv[4], &threads)) return false;
  const int32_t* d = static_cast<const int32_t*>(shape);
  for (int i = 0; i < 15; i++)
    if (d[i] < (i == 11 || i == 12 ? 0 : 1))
      return fail(env, kernel, "shape entries must be positive (pads ≥ 0)"), false;
  call->s = ConvShape{d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14]};
  call->threads = threads;
  // The kernels bounds-check (or pad for) every tap, so any Ho, Wo is memory-safe; only the lengths must match.
  for (int i = 0; i < 3; i++)
    if (lengths[i] != length(call->s, i)) return fail(env, kernel, std::string(names[i]) + " has the wrong length"), false;
  return true;
}

// SIZE_MAX (no array's length) when the product overflows.
size_t checked(std::initializer_list<int64_t> sizes) {
  size_t n;
  return count_of(sizes, &n) ? n : SIZE_MAX;
}
size_t x_length(const ConvShape& s) { return checked({s.n, s.c, s.h, s.w}); }
size_t dy_length(const ConvShape& s) { return checked({s.n, s.m, s.ho, s.wo}); }
size_t w_length(const ConvShape& s) { return checked({s.m, s.c, s.kh, s.kw}); }

napi_value ConvWeightGradient(napi_env env, napi_callback_info info) {
  static const char* const names[3] = {"x", "dy", "dw"};
  Call call;
  auto length = [](const ConvShape& s, int i) { return i == 0 ? x_length(s) : i == 1 ? dy_length(s) : w_length(s); };
  if (!parse(env, info, "convWeightGradient", names, &call, length)) return nullptr;
  // Kept between calls (per thread): a fresh multi-MB buffer would page-fault on every step.
  thread_local std::vector<float> scratch;
  try {
    const size_t need = conv_weight_gradient_scratch(call.s, call.threads);
    if (scratch.size() < need) scratch.resize(need);
    conv_weight_gradient(call.s, call.a[0], call.a[1], call.a[2], scratch.data(), call.threads);
  } catch (const std::exception& e) {  // out of memory for the scratch: a JS error, not an abort
    return fail(env, "convWeightGradient", e.what());
  }
  return nullptr;
}

napi_value ConvInputGradient(napi_env env, napi_callback_info info) {
  static const char* const names[3] = {"dy", "w", "dx"};
  Call call;
  auto length = [](const ConvShape& s, int i) { return i == 0 ? dy_length(s) : i == 1 ? w_length(s) : x_length(s); };
  if (!parse(env, info, "convInputGradient", names, &call, length)) return nullptr;
  thread_local std::vector<float> scratch;
  try {
    const size_t need = conv_input_gradient_scratch(call.s);
    if (scratch.size() < need) scratch.resize(need);
    conv_input_gradient(call.s, call.a[0], call.a[1], call.a[2], scratch.data(), call.threads);
  } catch (const std::exception& e) {
    return fail(env, "convInputGradient", e.what());
  }
  return nullptr;
}

// The routing steps: `floats` Float32Arrays, then an Int32Array of `dims` sizes when dims > 0.
struct Plain {
  float* a[6];
  size_t length[6];
  int64_t d[12];
};

bool plain(napi_env env, napi_callback_info info, const char* kernel, size_t floats, size_t dims, Plain* out) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != floats + (dims > 0 ? 1 : 0)) return fail(env, kernel, "wrong number of arguments"), false;
  for (size_t i = 0; i < floats; i++) {
    void* data;
    if (!typed(env, argv[i], napi_float32_array, &data, &out->length[i]))
      return fail(env, kernel, "expected Float32Arrays"), false;
    out->a[i] = static_cast<float*>(data);
  }
  if (dims == 0) return true;
  void* shape;
  size_t nshape;
  if (!typed(env, argv[floats], napi_int32_array, &shape, &nshape) || nshape != dims)
    return fail(env, kernel, "shape must be an Int32Array of " + std::to_string(dims)), false;
  for (size_t i = 0; i < dims; i++) {
    out->d[i] = static_cast<const int32_t*>(shape)[i];
    if (out->d[i] < 0) return fail(env, kernel, "shape entries must not be negative"), false;
  }
  return true;
}

napi_value MaxPoolGradient(napi_env env, napi_callback_info info) {
  Plain p;
  if (!plain(env, info, "maxPoolGradient", 3, 6, &p)) return nullptr;
  const int64_t n = p.d[0], c = p.d[1], h = p.d[2], w = p.d[3], k = p.d[4];
  if (k < 1) return fail(env, "maxPoolGradient", "the window must be at least 1");
  size_t x, y;
  if (!count_of({n, c, h, w}, &x) || !count_of({n, c, h / k, w / k}, &y) || p.length[0] != x ||
      p.length[1] != y || p.length[2] != x)
    return fail(env, "maxPoolGradient", "wrong lengths");
  // Nothing to write — and N·C planes of nothing could still be 2⁶⁰ turns of the loop.
  if (x == 0) return nullptr;
  max_pool_gradient(n, c, h, w, k, p.d[5] != 0, p.a[0], p.a[1], p.a[2]);
  return nullptr;
}

// Three arrays of one length in, the kernel F over them: reluGradient(y, dY, dX) and add(a, b, out).
template <void (*F)(int64_t, const float*, const float*, float*), const char* Name>
napi_value Elementwise(napi_env env, napi_callback_info info) {
  Plain p;
  if (!plain(env, info, Name, 3, 0, &p)) return nullptr;
  if (p.length[1] != p.length[0] || p.length[2] != p.length[0]) return fail(env, Name, "unequal lengths");
  F(int64_t(p.length[0]), p.a[0], p.a[1], p.a[2]);
  return nullptr;
}
constexpr char kReluGradient[] = "reluGradient";

// avgPoolGradient(dY, dX, [N, C, H, W, kh, kw, sh, sw, pt, pl, pb, pr]): divisor kh·kw.
napi_value AvgPoolGradient(napi_env env, napi_callback_info info) {
  Plain p;
  if (!plain(env, info, "avgPoolGradient", 2, 12, &p)) return nullptr;
  const int64_t n = p.d[0], c = p.d[1], h = p.d[2], w = p.d[3], kh = p.d[4], kw = p.d[5], sh = p.d[6], sw = p.d[7];
  const int64_t pt = p.d[8], pl = p.d[9], pb = p.d[10], pr = p.d[11];
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || pt >= kh || pl >= kw || pb >= kh || pr >= kw)
    return fail(env, "avgPoolGradient", "the window and strides must be at least 1 and each pad smaller than the window");
  if (h + pt + pb < kh || w + pl + pr < kw)
    return fail(env, "avgPoolGradient", "the window is larger than the padded input");
  const int64_t ho = (h + pt + pb - kh) / sh + 1, wo = (w + pl + pr - kw) / sw + 1;
  size_t dy_length, dx_length;
  if (!count_of({n, c, ho, wo}, &dy_length) || !count_of({n, c, h, w}, &dx_length) || p.length[0] != dy_length ||
      p.length[1] != dx_length)
    return fail(env, "avgPoolGradient", "wrong lengths");
  if (dx_length == 0) return nullptr;  // no planes: nothing to write (and no scratch sized by H, W alone)
  // Outside the same-size case the kernel sums each of Ho rows of dY over the windows covering a column into
  // Ho·W scratch, then each row of dX over the windows covering it: with pads and windows near 2³¹ both can
  // dwarf the arrays (16 GiB of scratch for 65,536-float arrays). Refused past 2²⁸ floats or 2³² adds.
  const bool same_size = sh == 1 && sw == 1 && ho == h && wo == w;
  if (!same_size) {
    const double planes = double(n) * double(c), cover_w = std::min<double>(double(wo), double(kw) / double(sw) + 1),
                 cover_h = std::min<double>(double(ho), double(kh) / double(sh) + 1);
    const double adds = planes * (double(ho) * double(w) * cover_w + double(h) * double(w) * cover_h);
    if (double(ho) * double(w) > double(1 << 28) || adds > 4294967296.0)
      return fail(env, "avgPoolGradient", "the window and pads are too large for these arrays");
  }
  try {
    avg_pool_gradient(n * c, h, w, kh, kw, sh, sw, pt, pl, ho, wo, p.a[0], p.a[1]);
  } catch (const std::exception& e) {
    return fail(env, "avgPoolGradient", e.what());
  }
  return nullptr;
}
constexpr char kAdd[] = "add";
constexpr char kMultiply[] = "multiply";

// The BatchNorm steps' arrays: those at `planes` are [N, C, P] (shape d[0..2]), those at `channels` [C].
bool channel_lengths(napi_env env, const Plain& p, const char* kernel, std::initializer_list<int> planes,
                     std::initializer_list<int> channels) {
  size_t big;
  bool ok = count_of({p.d[0], p.d[1], p.d[2]}, &big);
  for (int i : planes) ok = ok && p.length[i] == big;
  for (int i : channels) ok = ok && p.length[i] == size_t(p.d[1]);
  if (!ok) fail(env, kernel, "wrong lengths");
  return ok;
}

// batchNormInputGradient(x, γ, mean, invStd, dY, dX, [N, C, P, statistics, threads]) and
// batchNormScaleGradient(x, mean, invStd, dY, dγ, [N, C, P, threads]): x, dY, dX [N, C, P]; the rest [C].

napi_value BatchNormInputGradient(napi_env env, napi_callback_info info) {
  const char* kernel = "batchNormInputGradient";
  Plain p;
  int threads;
  if (!plain(env, info, kernel, 6, 5, &p) || !channel_lengths(env, p, kernel, {0, 4, 5}, {1, 2, 3}) ||
      !thread_count(env, kernel, p.d[4], &threads))
    return nullptr;
  if (p.length[0] == 0) return nullptr;  // no values: nothing to write (N empty planes could still be 2³¹ turns)
  try {
    batch_norm_input_gradient(p.d[0], p.d[1], p.d[2], p.d[3] != 0, p.a[0], p.a[1], p.a[2], p.a[3], p.a[4], p.a[5],
                              threads);
  } catch (const std::exception& e) {  // a thread that could not start
    return fail(env, kernel, e.what());
  }
  return nullptr;
}

napi_value BatchNormScaleGradient(napi_env env, napi_callback_info info) {
  const char* kernel = "batchNormScaleGradient";
  Plain p;
  int threads;
  if (!plain(env, info, kernel, 5, 4, &p) || !channel_lengths(env, p, kernel, {0, 3}, {1, 2, 4}) ||
      !thread_count(env, kernel, p.d[3], &threads))
    return nullptr;
  if (p.length[0] == 0) {  // a sum over nothing
    std::fill(p.a[4], p.a[4] + p.length[4], 0.0f);
    return nullptr;
  }
  try {
    batch_norm_scale_gradient(p.d[0], p.d[1], p.d[2], p.a[0], p.a[1], p.a[2], p.a[3], p.a[4], threads);
  } catch (const std::exception& e) {
    return fail(env, kernel, e.what());
  }
  return nullptr;
}

napi_value BiasGradient(napi_env env, napi_callback_info info) {
  Plain p;
  if (!plain(env, info, "biasGradient", 2, 3, &p)) return nullptr;
  size_t dy_length;
  if (!count_of({p.d[0], p.d[1], p.d[2]}, &dy_length) || p.length[0] != dy_length || p.length[1] != size_t(p.d[1]))
    return fail(env, "biasGradient", "wrong lengths");
  if (dy_length == 0) {  // a sum over nothing (without looping over N·C empty planes)
    std::fill(p.a[1], p.a[1] + p.length[1], 0.0f);
    return nullptr;
  }
  bias_gradient(p.d[0], p.d[1], p.d[2], p.a[0], p.a[1]);
  return nullptr;
}

napi_value BlasName(napi_env env, napi_callback_info) {
  napi_value name;
  if (blas_name()) napi_create_string_utf8(env, blas_name(), NAPI_AUTO_LENGTH, &name);
  else napi_get_null(env, &name);
  return name;
}

napi_value LinearWeightGradient(napi_env env, napi_callback_info info) {
  const char* kernel = "linearWeightGradient";
  if (!blas_name()) return fail(env, kernel, "no OpenBLAS found");
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 5) return fail(env, kernel, "expected (x, dy, dw, shape, threads)");
  // Shape and threads first (no JS runs after the data pointers are taken).
  void* shape;
  size_t nshape;
  int threads = 1;
  if (!typed(env, argv[3], napi_int32_array, &shape, &nshape) || nshape != 3)
    return fail(env, kernel, "shape must be an Int32Array of 3 [N, in, out]");
  if (!thread_argument(env, kernel, argv[4], &threads)) return nullptr;
  const int32_t* d = static_cast<const int32_t*>(shape);
  const int64_t n = d[0], in = d[1], out = d[2];
  size_t want[3];
  if (!count_of({n, in}, &want[0]) || !count_of({n, out}, &want[1]) || !count_of({out, in}, &want[2]))
    return fail(env, kernel, "shape entries must not be negative");
  float* a[3];
  for (int i = 0; i < 3; i++) {
    void* data;
    size_t length;
    if (!typed(env, argv[i], napi_float32_array, &data, &length) || length != want[i])
      return fail(env, kernel, "x, dy and dw must be Float32Arrays of N·in, N·out and out·in");
    a[i] = static_cast<float*>(data);
  }
  try {
    linear_weight_gradient(n, in, out, a[0], a[1], a[2], threads);
  } catch (const std::exception& e) {  // a thread that could not start
    return fail(env, kernel, e.what());
  }
  return nullptr;
}

// The elements of a JS array (the update's states and gradient parts). Fetched before any data pointer is
// taken: napi_get_element can run a getter, and a getter could detach a buffer already looked at.
// At most MAX_ELEMENTS of them (states: 2; parts: one per participant): an array of length 2³² − 1 was
// walked element by element and grew a vector past memory (an uncaught bad_alloc: the process aborted).
constexpr uint32_t MAX_ELEMENTS = 1024;
bool elements(napi_env env, napi_value array, std::vector<napi_value>* out) {
  bool is = false;
  uint32_t count = 0;
  if (napi_is_array(env, array, &is) != napi_ok || !is || napi_get_array_length(env, array, &count) != napi_ok ||
      count > MAX_ELEMENTS)
    return false;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    if (napi_get_element(env, array, i, &element) != napi_ok) return false;
    out->push_back(element);
  }
  return true;
}

// Each value's Float32Array data, each `length` long (runs no JS).
bool float_arrays(napi_env env, const std::vector<napi_value>& values, size_t length, std::vector<float*>* out) {
  for (napi_value value : values) {
    void* data;
    size_t n;
    if (!typed(env, value, napi_float32_array, &data, &n) || n != length) return false;
    out->push_back(static_cast<float*>(data));
  }
  return true;
}

napi_value OptimizerUpdate(napi_env env, napi_callback_info info) {
  const char* kernel = "optimizerUpdate";
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 8) return fail(env, kernel, "wrong number of arguments");
  // Everything that can run JS first (array element getters), then the data pointers.
  std::vector<napi_value> state_values, part_values;
  if (!elements(env, argv[5], &state_values) || !elements(env, argv[6], &part_values))
    return fail(env, kernel, "states and parts must be arrays (of at most 1024)");
  int32_t kind = -1;
  double lr = 0, step = 0;
  if (napi_get_value_int32(env, argv[0], &kind) != napi_ok || (kind != 0 && kind != 1))
    return fail(env, kernel, "kind must be 0 (sgd) or 1 (adam)");
  void* hyper_data;
  size_t hyper_length;
  if (!typed(env, argv[1], napi_float32_array, &hyper_data, &hyper_length) || hyper_length != (kind == 0 ? 3u : 5u))
    return fail(env, kernel, "hyper must be a Float32Array of 3 (sgd) or 5 (adam)");
  if (napi_get_value_double(env, argv[2], &lr) != napi_ok || napi_get_value_double(env, argv[3], &step) != napi_ok)
    return fail(env, kernel, "lr and step must be numbers");
  void* param_data;
  size_t size;
  if (!typed(env, argv[4], napi_float32_array, &param_data, &size))
    return fail(env, kernel, "param must be a Float32Array");
  std::vector<float*> states, parts;
  if (!float_arrays(env, state_values, size, &states) || !float_arrays(env, part_values, size, &parts) ||
      parts.empty())
    return fail(env, kernel, "states and parts must be arrays of Float32Arrays as long as param (parts not empty)");
  napi_valuetype shares_type;
  napi_typeof(env, argv[7], &shares_type);
  const float* shares = nullptr;
  if (shares_type != napi_null) {
    void* data;
    size_t n;
    if (!typed(env, argv[7], napi_float32_array, &data, &n) || n != parts.size())
      return fail(env, kernel, "shares must be null or a Float32Array with one share per part");
    shares = static_cast<const float*>(data);
  } else if (parts.size() != 1) {
    return fail(env, kernel, "more than one gradient part needs shares");
  }
  const float* h = static_cast<const float*>(hyper_data);
  const GradientParts grad{parts.data(), shares, int(parts.size())};
  float* param = static_cast<float*>(param_data);
  if (kind == 0) {
    const SgdConfig config{h[0], h[1], h[2] != 0.0f};
    if (states.size() != (config.momentum > 0.0f ? 1u : 0u))
      return fail(env, kernel, "sgd takes one state (the momentum buffer) with momentum, none without");
    sgd_update(int64_t(size), config, float(lr), grad, param, states.empty() ? nullptr : states[0]);
  } else {
    if (states.size() != 2) return fail(env, kernel, "adam takes two states (exp_avg, exp_avg_sq)");
    const AdamConfig config{h[0], h[1], h[2], h[3], h[4] != 0.0f};
    adam_update(int64_t(size), config, float(lr), float(step), grad, param, states[0], states[1]);
  }
  return nullptr;
}

// gather(src, out, map): every map entry is checked against src (a bad map is a JS error, not a stray read).
napi_value Gather(napi_env env, napi_callback_info info) {
  const char* kernel = "gather";
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  void *src, *out, *map;
  size_t n_src, n_out, n_map;
  if (argc != 3 || !typed(env, argv[0], napi_float32_array, &src, &n_src) ||
      !typed(env, argv[1], napi_float32_array, &out, &n_out) || !typed(env, argv[2], napi_int32_array, &map, &n_map))
    return fail(env, kernel, "expected (src: Float32Array, out: Float32Array, map: Int32Array)");
  if (n_map != n_out) return fail(env, kernel, "map and out differ in length");
  // out written while map is still read (or src): one buffer for both turned later entries into float bits.
  const auto overlaps = [](const void* a, size_t na, const void* b, size_t nb) {
    const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
    return na > 0 && nb > 0 && x < y + nb && y < x + na;
  };
  if (overlaps(out, n_out * 4, map, n_map * 4) || overlaps(out, n_out * 4, src, n_src * 4))
    return fail(env, kernel, "out must not share memory with src or map");
  const int32_t* m = static_cast<const int32_t*>(map);
  for (size_t j = 0; j < n_map; j++)
    if (m[j] < -1 || (m[j] >= 0 && size_t(m[j]) >= n_src)) return fail(env, kernel, "map entry out of range");
  const float* from = static_cast<const float*>(src);
  float* to = static_cast<float*>(out);
  for (size_t j = 0; j < n_map; j++) to[j] = m[j] < 0 ? 0.0f : from[m[j]];
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "convWeightGradient", NAPI_AUTO_LENGTH, ConvWeightGradient, nullptr, &fn);
  napi_set_named_property(env, exports, "convWeightGradient", fn);
  napi_create_function(env, "convInputGradient", NAPI_AUTO_LENGTH, ConvInputGradient, nullptr, &fn);
  napi_set_named_property(env, exports, "convInputGradient", fn);
  const std::pair<const char*, napi_callback> routing[] = {
      {"maxPoolGradient", MaxPoolGradient},
      {"reluGradient", Elementwise<relu_gradient, kReluGradient>},
      {"add", Elementwise<add, kAdd>},
      {"multiply", Elementwise<multiply, kMultiply>},
      {"biasGradient", BiasGradient},
      {"avgPoolGradient", AvgPoolGradient},
      {"batchNormInputGradient", BatchNormInputGradient},
      {"batchNormScaleGradient", BatchNormScaleGradient},
      {"linearWeightGradient", LinearWeightGradient},
      {"blasName", BlasName},
      {"gather", Gather},
      {"optimizerUpdate", OptimizerUpdate}};
  for (const auto& [name, callback] : routing) {
    napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn);
    napi_set_named_property(env, exports, name, fn);
  }
  return exports;
}
