#include "routing.h"

#include "parallel.h"

#include <algorithm>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

typedef float v16 __attribute__((vector_size(64), aligned(4)));

// Rows and columns past the last whole k×k window of a plane, which no window writes.
void zero_leftovers(int64_t h, int64_t w, int64_t k, float* dx) {
  const int64_t ho = h / k, wo = w / k;
  for (int64_t y = 0; y < h; y++) {
    const int64_t from = y < ho * k ? wo * k : 0;
    std::fill(dx + y * w + from, dx + (y + 1) * w, 0.0f);
  }
}

// One kk×kk window at `origin` of a plane w wide: its dY to the first element no later one exceeds (ties
// keep the first; a NaN compares false, so it wins only as the first element — the same answer for every kk).
inline void route_window(int64_t w, int64_t kk, bool relu, const float* x, float g, float* dx, int64_t origin) {
  int64_t best = origin;
  float top = x[origin];
  for (int64_t i = 0; i < kk; i++)
    for (int64_t j = 0; j < kk; j++) {
      const int64_t at = origin + i * w + j;
      const bool better = x[at] > top;  // strictly greater: ties keep the first
      top = better ? x[at] : top;
      best = better ? at : best;
    }
  for (int64_t i = 0; i < kk; i++)
    for (int64_t j = 0; j < kk; j++) dx[origin + i * w + j] = 0.0f;
  dx[best] = relu && !(top > 0.0f) ? 0.0f : g;
}

// One plane's windows: every element of a window is written (its dY or 0), so only leftovers need zeroing.
void route(int64_t h, int64_t w, int64_t kk, bool relu, const float* x, const float* dy, float* dx) {
  const int64_t ho = h / kk, wo = w / kk;
  for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) route_window(w, kk, relu, x, dy[oy * wo + ox], dx, oy * kk * w + ox * kk);
  zero_leftovers(h, w, kk, dx);
}

// 2×2: the four outputs of a window written straight from comparisons (no store through a computed
// index, which serialized the windows: 4× slower on 64×16×24×24).
void route2(int64_t h, int64_t w, bool relu, const float* x, const float* dy, float* dx) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t oy = 0; oy < ho; oy++) {
    const float* r0 = x + 2 * oy * w;
    const float* r1 = r0 + w;
    float* o0 = dx + 2 * oy * w;
    float* o1 = o0 + w;
    const float* g = dy + oy * wo;
    int64_t ox = 0;
#ifdef __AVX512F__
    // 8 windows per step: each row's 16 floats hold 8 (left, right) pairs.
    const __m512i pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    for (; ox < wo; ox += 8) {
      const int64_t count = std::min<int64_t>(8, wo - ox);
      const __mmask16 lanes = __mmask16((1u << (2 * count)) - 1);
      const __m512 a = _mm512_maskz_loadu_ps(lanes, r0 + 2 * ox), c = _mm512_maskz_loadu_ps(lanes, r1 + 2 * ox);
      const __m512 top0 = _mm512_max_ps(a, _mm512_permute_ps(a, 0xB1));  // each pair's max, in both lanes
      const __m512 top = _mm512_max_ps(top0, _mm512_max_ps(c, _mm512_permute_ps(c, 0xB1)));
      const unsigned eq0 = _mm512_cmp_ps_mask(a, top, _CMP_EQ_OQ), eq1 = _mm512_cmp_ps_mask(c, top, _CMP_EQ_OQ);
      // First maximum: left then right of row 0, then of row 1 (the last one the fallback, as below).
      const unsigned left0 = eq0 & 0x5555u, right0 = eq0 & 0xAAAAu & ~(left0 << 1);
      const unsigned row0 = left0 | right0, taken = row0 | ((row0 & 0x5555u) << 1) | ((row0 >> 1) & 0x5555u);
      const unsigned left1 = eq1 & 0x5555u & ~taken, right1 = 0xAAAAu & ~taken & ~(left1 << 1);
      unsigned live = 0xFFFFu;
      if (relu) live = _mm512_cmp_ps_mask(top, _mm512_setzero_ps(), _CMP_GT_OQ);
      const __m512 grad = _mm512_permutexvar_ps(pairs, _mm512_maskz_loadu_ps(__mmask16((1u << count) - 1), g + ox));
      _mm512_mask_storeu_ps(o0 + 2 * ox, lanes, _mm512_maskz_mov_ps(__mmask16(row0 & live), grad));
      _mm512_mask_storeu_ps(o1 + 2 * ox, lanes, _mm512_maskz_mov_ps(__mmask16((left1 | right1) & live), grad));
      // max_ps drops a NaN or keeps it by operand order: windows holding one take route()'s rule instead.
      const unsigned nan = (_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q)) & lanes;
      for (int64_t k = 0; k < count; k++)
        if (nan & (3u << (2 * k))) route_window(w, 2, relu, x, g[ox + k], dx, 2 * oy * w + 2 * (ox + k));
    }
#endif
    for (; ox < wo; ox++) {
      const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
      if (a != a || b != b || c != c || d != d) {  // a NaN: route()'s rule, as above
        route_window(w, 2, relu, x, g[ox], dx, 2 * oy * w + 2 * ox);
        continue;
      }
      const float top = std::max(std::max(a, b), std::max(c, d));
      // The first maximum in row-major order: a, then b, c, d. Masks, not branches (random data
      // mispredicts every other window).
      const uint32_t live = !relu || top > 0.0f;
      const uint32_t ia = a == top, ib = (b == top) & !ia, ic = (c == top) & !(ia | ib), id = !(ia | ib | ic);
      uint32_t bits;
      std::memcpy(&bits, g + ox, sizeof bits);
      bits &= 0u - live;
      const uint32_t out[4] = {bits & (0u - ia), bits & (0u - ib), bits & (0u - ic), bits & (0u - id)};
      std::memcpy(o0 + 2 * ox, out, 2 * sizeof(float));
      std::memcpy(o1 + 2 * ox, out + 2, 2 * sizeof(float));
    }
  }
  zero_leftovers(h, w, 2, dx);
}

}  // namespace

void max_pool_gradient(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, bool relu, const float* x,
                       const float* dy, float* dx) {
  const int64_t ho = h / k, wo = w / k;
  for (int64_t plane = 0; plane < n * c; plane++) {
    const float* xp = x + plane * h * w;
    const float* dp = dy + plane * ho * wo;
    float* out = dx + plane * h * w;
    if (k == 2) route2(h, w, relu, xp, dp, out);
    else route(h, w, k, relu, xp, dp, out);
  }
}

void relu_gradient(int64_t size, const float* y, const float* dy, float* dx) {
  for (int64_t i = 0; i < size; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void add(int64_t size, const float* a, const float* b, float* out) {
  for (int64_t i = 0; i < size; i++) out[i] = a[i] + b[i];
}

void multiply(int64_t size, const float* a, const float* b, float* out) {
  for (int64_t i = 0; i < size; i++) out[i] = a[i] * b[i];
}

void bias_gradient(int64_t n, int64_t c, int64_t p, const float* dy, float* db) {
  for (int64_t ch = 0; ch < c; ch++) {
    double sum = 0;  // per image in float vectors, across images in double
    for (int64_t i = 0; i < n; i++) {
      const float* d = dy + (i * c + ch) * p;
      v16 part = v16{};
      int64_t q = 0;
      for (; q + 16 <= p; q += 16) part += *reinterpret_cast<const v16*>(d + q);
      float tail = 0;
      for (; q < p; q++) tail += d[q];
      for (int l = 0; l < 16; l++) tail += part[l];
      sum += tail;
    }
    db[ch] = float(sum);
  }
}

namespace {

// Same-size pooling (Ho = H, Wo = W: pads summing to k − 1 on each axis, as 3×3 with pad 1): each tap of a
// pass is one shifted run over the whole flat plane, a mask zeroing the terms that would cross a row (or
// column) edge. Branch-free and vectorized however small the plane (inception's are 4×4 and 12×12, where
// per-row loops cost more than the adds).
void same_size_gradient(int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pt, int64_t pl,
                        const float* dy, float* dx) {
  const int64_t size = h * w;
  // Only taps whose shift stays inside the plane read anything (j in (pl − w, pl + w), i likewise): a window
  // far wider than the plane, with pads nearly as wide, costs no more than one 2w − 1 wide.
  const int64_t j0 = std::max<int64_t>(0, pl - w + 1), j1 = std::min<int64_t>(kw, pl + w);
  const int64_t i0 = std::max<int64_t>(0, pt - h + 1), i1 = std::min<int64_t>(kh, pt + h);
  const int64_t nj = std::max<int64_t>(0, j1 - j0), ni = std::max<int64_t>(0, i1 - i0);
  thread_local std::vector<float> scratch;
  scratch.resize(size_t(size * (nj + ni + 1)));
  float* column_masks = scratch.data();           // nj × size: tap j0 + j reads column x + pl − j0 − j
  float* row_masks = column_masks + nj * size;   // ni × size: tap i0 + i reads row y + pt − i0 − i
  float* rows = row_masks + ni * size;           // one plane's horizontal sums
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      for (int64_t j = 0; j < nj; j++) {
        const int64_t col = x + pl - (j0 + j);
        column_masks[j * size + y * w + x] = (col >= 0 && col < w);
      }
      for (int64_t i = 0; i < ni; i++) {
        const int64_t row = y + pt - (i0 + i);
        row_masks[i * size + y * w + x] = (row >= 0 && row < h);
      }
    }
  const float scale = 1.0f / float(kh * kw);
  for (int64_t p = 0; p < planes; p++) {
    const float* g = dy + p * size;
    float* out = dx + p * size;
    std::fill(rows, rows + size, 0.0f);
    for (int64_t j = 0; j < nj; j++) {
      const int64_t shift = pl - (j0 + j), from = std::max<int64_t>(0, -shift), to = std::min<int64_t>(size, size - shift);
      const float* m = column_masks + j * size;
      for (int64_t k = from; k < to; k++) rows[k] += m[k] != 0.0f ? g[k + shift] : 0.0f;  // a select: 0·inf is NaN
    }
    std::fill(out, out + size, 0.0f);
    for (int64_t i = 0; i < ni; i++) {
      const int64_t shift = (pt - (i0 + i)) * w, from = std::max<int64_t>(0, -shift), to = std::min<int64_t>(size, size - shift);
      const float* m = row_masks + i * size;
      for (int64_t k = from; k < to; k++) out[k] += m[k] != 0.0f ? rows[k + shift] : 0.0f;
    }
    for (int64_t k = 0; k < size; k++) out[k] *= scale;
  }
}

}  // namespace

void avg_pool_gradient(int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                       int64_t pt, int64_t pl, int64_t ho, int64_t wo, const float* dy, float* dx) {
  if (sh == 1 && sw == 1 && ho == h && wo == w) return same_size_gradient(planes, h, w, kh, kw, pt, pl, dy, dx);
  // Separable: each dY row summed over the windows covering column x (outputs ox with
  // ox·sw − pl ≤ x ≤ ox·sw − pl + kw − 1), then, scaled, those row sums over the windows covering row y.
  const auto covering = [](int64_t at, int64_t pad, int64_t k, int64_t stride, int64_t count) {
    const int64_t lo = at + pad - k + 1, hi = at + pad;  // ox·stride must lie in [lo, hi]
    const int64_t first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
    const int64_t last = hi < 0 ? -1 : std::min<int64_t>(count - 1, hi / stride);
    return std::pair<int64_t, int64_t>{first, last};
  };
  thread_local std::vector<float> rows;
  rows.resize(size_t(ho * w));
  const float scale = 1.0f / float(kh * kw);
  for (int64_t p = 0; p < planes; p++) {
    const float* g = dy + p * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++)
      for (int64_t x = 0; x < w; x++) {
        const auto [first, last] = covering(x, pl, kw, sw, wo);
        float sum = 0.0f;
        for (int64_t ox = first; ox <= last; ox++) sum += g[oy * wo + ox];
        rows[size_t(oy * w + x)] = sum * scale;
      }
    float* out = dx + p * h * w;
    for (int64_t y = 0; y < h; y++) {
      const auto [first, last] = covering(y, pt, kh, sh, ho);
      float* o = out + y * w;
      std::fill(o, o + w, 0.0f);
      for (int64_t oy = first; oy <= last; oy++)
        for (int64_t x = 0; x < w; x++) o[x] += rows[size_t(oy * w + x)];
    }
  }
}

namespace {

// Σ dY and Σ dY·x̂ over channel ch's N·P elements.
void channel_sums(int64_t n, int64_t c, int64_t p, int64_t ch, float mu, float is, const float* x, const float* dy,
                  double* sum_dy, double* sum_dy_xhat) {
  double a = 0, b = 0;
  for (int64_t i = 0; i < n; i++) {
    const float* xs = x + (i * c + ch) * p;
    const float* ds = dy + (i * c + ch) * p;
    float fa = 0.0f, fb = 0.0f;  // one image's plane in float (vectorized), the planes added in double
    for (int64_t k = 0; k < p; k++) {
      fa += ds[k];
      fb += ds[k] * ((xs[k] - mu) * is);
    }
    a += fa;
    b += fb;
  }
  *sum_dy = a;
  *sum_dy_xhat = b;
}

// How many parts the work pays for, at most `threads` and one per channel (~64 K elements each: a thread's
// start costs about what that much of the pass does).
int channel_parts(int64_t n, int64_t c, int64_t p, int threads) {
  const int64_t enough = std::max<int64_t>(1, n * c * p / (1 << 16));
  return int(std::max<int64_t>(1, std::min<int64_t>({threads, c, enough})));
}

template <typename F>
void over_channels(int64_t n, int64_t c, int64_t p, int threads, F per_channel) {
  const int parts = channel_parts(n, c, p, threads);
  parallel(parts, [&](int part) {
    for (int64_t ch = c * part / parts; ch < c * (part + 1) / parts; ch++) per_channel(ch);
  });
}

}  // namespace

void batch_norm_input_gradient(int64_t n, int64_t c, int64_t p, bool statistics, const float* x, const float* gamma,
                               const float* mean, const float* inv_std, const float* dy, float* dx, int threads) {
  const double m = double(n * p);
  over_channels(n, c, p, threads, [&](int64_t ch) {
    const float mu = mean[ch], is = inv_std[ch], scale = gamma[ch] * is;
    float mean_dy = 0.0f, mean_dy_xhat = 0.0f;
    if (statistics) {
      double sum_dy, sum_dy_xhat;
      channel_sums(n, c, p, ch, mu, is, x, dy, &sum_dy, &sum_dy_xhat);
      mean_dy = float(sum_dy / m);
      mean_dy_xhat = float(sum_dy_xhat / m);
    }
    for (int64_t i = 0; i < n; i++) {
      const float* xs = x + (i * c + ch) * p;
      const float* ds = dy + (i * c + ch) * p;
      float* out = dx + (i * c + ch) * p;
      for (int64_t k = 0; k < p; k++) out[k] = (ds[k] - mean_dy - (xs[k] - mu) * is * mean_dy_xhat) * scale;
    }
  });
}

void batch_norm_scale_gradient(int64_t n, int64_t c, int64_t p, const float* x, const float* mean,
                               const float* inv_std, const float* dy, float* dgamma, int threads) {
  over_channels(n, c, p, threads, [&](int64_t ch) {
    double sum_dy, sum_dy_xhat;
    channel_sums(n, c, p, ch, mean[ch], inv_std[ch], x, dy, &sum_dy, &sum_dy_xhat);
    dgamma[ch] = float(sum_dy_xhat);
  });
}
