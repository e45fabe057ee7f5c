// The memory-bound gradient steps that sit between native Conv gradients, so a chain of them runs without
// going back to ORT (each return costs a session run and a copy of its outputs into fresh JS buffers).
#pragma once

#include <cstdint>

// dX[N,C,H,W] of a k×k max-pool with stride k and no padding: each window's dY goes to the first (row-major)
// maximal element of X, as ORT's Indices and PyTorch route it; rows and columns past the last window get 0.
// With `relu`, X is a ReLU's output and the ReLU's gradient is folded in: a window whose maximum is 0 gets 0.
void max_pool_gradient(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, bool relu, const float* x,
                       const float* dy, float* dx);

// dX = dY where the ReLU's output Y > 0, else 0.
void relu_gradient(int64_t size, const float* y, const float* dy, float* dx);

// out = a + b.
void add(int64_t size, const float* a, const float* b, float* out);

// out = a · b (a dropout's gradient: dY times its mask).
void multiply(int64_t size, const float* a, const float* b, float* out);

// dB[c] = Σ_n,p dY[n, c, p] (a Conv's bias gradient).
void bias_gradient(int64_t n, int64_t c, int64_t p, const float* dy, float* db);

// dX[N,C,H,W] of a kh×kw average pool with strides (sh, sw) whose divisor is always kh·kw (count_include_pad,
// or no padding), pads (pt, pl, pb, pr) and dY [N,C,Ho,Wo], Ho = (H + pt + pb − kh) / sh + 1: each input
// element gets the mean of the dY of every window that covers it (the box filter's adjoint; 0 if none).
void avg_pool_gradient(int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                       int64_t pt, int64_t pl, int64_t ho, int64_t wo, const float* dy, float* dx);

// A BatchNorm's dX [N,C,P] from its input x, γ, the statistics it normalized by (mean, 1/√(var + ε); [C]) and
// dY. With x̂ = (x − mean)·invStd and m = N·P: dX = γ·invStd·(dY − mean(dY) − x̂·mean(dY·x̂)) when the
// statistics are the batch's own (`statistics`: they depend on x), else γ·invStd·dY. Sums in double. Threads
// split the channels (each computes the same sums in the same order: results do not depend on the count).
void batch_norm_input_gradient(int64_t n, int64_t c, int64_t p, bool statistics, const float* x, const float* gamma,
                               const float* mean, const float* inv_std, const float* dy, float* dx, int threads);

// dγ[c] = Σ_n,p dY·x̂ (the BatchNorm's scale gradient), in double; threads split the channels.
void batch_norm_scale_gradient(int64_t n, int64_t c, int64_t p, const float* x, const float* mean,
                               const float* inv_std, const float* dy, float* dgamma, int threads);
