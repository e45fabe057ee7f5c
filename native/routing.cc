#include "routing.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace {

typedef float v16 __attribute__((vector_size(64), aligned(4)));

// One plane's windows: every element of a window is written (its dY or 0), so only leftovers need zeroing.
template <int K>
void route(int64_t h, int64_t w, int64_t k, bool relu, const float* x, const float* dy, float* dx) {
  const int64_t kk = K > 0 ? K : k, ho = h / kk, wo = w / kk;
  for (int64_t oy = 0; oy < ho; oy++)
    for (int64_t ox = 0; ox < wo; ox++) {
      const int64_t origin = oy * kk * w + ox * kk;
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
      dx[best] = relu && !(top > 0.0f) ? 0.0f : dy[oy * wo + ox];
    }
  // Rows and columns past the last whole window.
  for (int64_t y = 0; y < h; y++) {
    const int64_t from = y < ho * kk ? wo * kk : 0;
    std::fill(dx + y * w + from, dx + (y + 1) * w, 0.0f);
  }
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
    for (int64_t ox = 0; ox < wo; ox++) {
      const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
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
  for (int64_t y = 0; y < h; y++) {
    const int64_t from = y < ho * 2 ? wo * 2 : 0;
    std::fill(dx + y * w + from, dx + (y + 1) * w, 0.0f);
  }
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
    else route<0>(h, w, k, relu, xp, dp, out);
  }
}

void relu_gradient(int64_t size, const float* y, const float* dy, float* dx) {
  for (int64_t i = 0; i < size; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void add(int64_t size, const float* a, const float* b, float* out) {
  for (int64_t i = 0; i < size; i++) out[i] = a[i] + b[i];
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
