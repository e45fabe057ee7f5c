// A 2-D convolution's weight gradient, dW[M,C,kh,kw] = Σ_n,p dY[n,m,p] · X[n,c,window(p, i, j)], on the CPU.
// Why native: ORT computes it as Conv(Xᵀ, dYᵀ) — batch as channels, dY as a huge kernel, a 5×5 output —
// a shape MLAS runs at about 40% of its forward-conv speed; here it is one dense dot-product GEMM.
#pragma once

#include <cstdint>

struct ConvShape {
  int32_t n, c, h, w;       // X
  int32_t m, ho, wo;        // dY
  int32_t kh, kw;           // kernel
  int32_t sh, sw;           // strides
  int32_t pt, pl;           // leading pads (trailing pads only decide Ho, Wo)
  int32_t dh, dw;           // dilations
};

#include <cstddef>

// Floats of scratch space conv_weight_gradient needs for this shape and thread count.
size_t conv_weight_gradient_scratch(const ConvShape& s, int threads);

// Overwrites dw (M·C·kh·kw floats), using `scratch` (see above). Runs on `threads` threads.
void conv_weight_gradient(const ConvShape& s, const float* x, const float* dy, float* dw, float* scratch,
                          int threads);
