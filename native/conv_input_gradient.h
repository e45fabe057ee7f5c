// A 2-D convolution's input gradient, dX[N,C,H,W] = Σ_m,i,j dY[n, m, (y + pt − i·dh)/sh, …] · W[m, c, i, j]:
// the full correlation of dY (zero-upsampled by the strides) with the flipped weights.
// Why native: ORT runs it as ConvTranspose, a GEMM into columns and a col2im scatter-add; these small
// shapes (≤ 64 channels, ≤ 28×28) fit a direct register-blocked correlation with no columns at all, or
// (where the correlation would multiply much padding, or strides) the same GEMM with the col2im added straight
// from the registers.
#pragma once

#include <cstddef>

#include "conv_weight_gradient.h"  // ConvShape

// Floats of scratch space conv_input_gradient needs for this shape.
size_t conv_input_gradient_scratch(const ConvShape& s);

// Overwrites dx (N·C·H·W floats) from dy (N·M·Ho·Wo) and w (M·C·kh·kw), using `scratch` (see above).
void conv_input_gradient(const ConvShape& s, const float* dy, const float* w, float* dx, float* scratch,
                         int threads);
