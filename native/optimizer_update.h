// The optimizer's update as one pass over a range of parameters, in place: the data-parallel trainer's
// shards (train/parallel/slice-runner.ts) read and write shared memory directly, with no session run and
// no copies in or out. The arithmetic follows the update graphs (core/training/optim/) operation by
// operation, in float, so both paths agree to rounding.
#pragma once

#include <cstdint>

// The gradient is Σ_j shares[j] · parts[j][i] (data-parallel participants' slice means), or parts[0][i]
// when shares is null (one source, as the one-source graph reads it).
struct GradientParts {
  const float* const* parts;
  const float* shares;
  int count;
};

// PyTorch's SGD (dampening 0): g ← g + λ·p; b ← μ·b + g; g ← nesterov ? g + μ·b : b; p ← p − lr·g.
// `buffer` is null without momentum.
struct SgdConfig {
  float momentum, weight_decay;
  bool nesterov;
};
void sgd_update(int64_t size, const SgdConfig& config, float lr, const GradientParts& grad, float* param,
                float* buffer);

// PyTorch's Adam / AdamW at step t ≥ 1 (see core/training/optim/adam.ts).
struct AdamConfig {
  float beta1, beta2, eps, weight_decay;
  bool decoupled;
};
void adam_update(int64_t size, const AdamConfig& config, float lr, float step, const GradientParts& grad,
                 float* param, float* exp_avg, float* exp_avg_sq);
