#include "optimizer_update.h"

#include <algorithm>
#include <cmath>

namespace {

constexpr int64_t kChunk = 512;

// The gradient of elements [from, from + n) into `out`, summed as the graph's Sum(Mul(part_j, share_j)):
// products first, then left to right. In chunks, so the update's own loop stays a plain vector loop.
void gradient_chunk(const GradientParts& g, int64_t from, int64_t n, float* out) {
  const float* first = g.parts[0] + from;
  if (!g.shares) {
    std::copy(first, first + n, out);
    return;
  }
  for (int64_t k = 0; k < n; k++) out[k] = first[k] * g.shares[0];
  for (int j = 1; j < g.count; j++) {
    const float* part = g.parts[j] + from;
    const float share = g.shares[j];
    for (int64_t k = 0; k < n; k++) out[k] = out[k] + part[k] * share;
  }
}

}  // namespace

void sgd_update(int64_t size, const SgdConfig& c, float lr, const GradientParts& grad, float* param, float* buffer) {
  const bool decay = c.weight_decay > 0.0f, momentum = c.momentum > 0.0f;
  float g[kChunk];
  for (int64_t from = 0; from < size; from += kChunk) {
    const int64_t n = std::min(kChunk, size - from);
    gradient_chunk(grad, from, n, g);
    float* p = param + from;
    if (decay)
      for (int64_t k = 0; k < n; k++) g[k] = g[k] + p[k] * c.weight_decay;
    if (momentum) {
      float* b = buffer + from;
      for (int64_t k = 0; k < n; k++) {
        const float next = b[k] * c.momentum + g[k];
        b[k] = next;
        g[k] = c.nesterov ? g[k] + next * c.momentum : next;
      }
    }
    for (int64_t k = 0; k < n; k++) p[k] = p[k] - g[k] * lr;
  }
}

void adam_update(int64_t size, const AdamConfig& c, float lr, float step, const GradientParts& grad, float* param,
                 float* exp_avg, float* exp_avg_sq) {
  // The graph's scalars, in float as ORT computes them.
  const float correction1 = 1.0f - std::pow(c.beta1, step);
  const float sqrt_correction2 = std::sqrt(1.0f - std::pow(c.beta2, step));
  const float step_size = lr / correction1;
  const float one_minus_b1 = 1.0f - c.beta1, one_minus_b2 = 1.0f - c.beta2;
  const bool coupled = c.weight_decay > 0.0f && !c.decoupled;
  const float shrink = c.weight_decay > 0.0f && c.decoupled ? 1.0f - lr * c.weight_decay : 1.0f;
  float g[kChunk];
  for (int64_t from = 0; from < size; from += kChunk) {
    const int64_t n = std::min(kChunk, size - from);
    gradient_chunk(grad, from, n, g);
    float* p = param + from;
    float* m = exp_avg + from;
    float* v = exp_avg_sq + from;
    if (coupled)
      for (int64_t k = 0; k < n; k++) g[k] = g[k] + p[k] * c.weight_decay;
    for (int64_t k = 0; k < n; k++) {
      const float pk = shrink == 1.0f ? p[k] : p[k] * shrink;
      const float mk = m[k] * c.beta1 + g[k] * one_minus_b1;
      const float vk = v[k] * c.beta2 + (g[k] * g[k]) * one_minus_b2;
      m[k] = mk;
      v[k] = vk;
      p[k] = pk - step_size * (mk / (std::sqrt(vk) / sqrt_correction2 + c.eps));
    }
  }
}
