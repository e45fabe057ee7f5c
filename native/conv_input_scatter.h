// dX of a convolution whose input channels fill whole 16-float vectors, as a GEMM fused with its col2im:
// per dY pixel, dX's patch += Wᵀ·dY (conv_input_gradient.cc picks it when its cost is the lowest).
#pragma once

#include <cstddef>

#include "conv_weight_gradient.h"  // ConvShape

// Floats of scratch it needs for this shape.
size_t conv_input_scatter_scratch(const ConvShape& s);

// Vector FMAs it issues per image (conv_input_gradient.cc's unit): exactly the convolution's products.
double conv_input_scatter_fmas(const ConvShape& s);

// Overwrites dx (N·C·H·W) from dy (N·M·Ho·Wo) and w (M·C·kh·kw); needs C % 16 == 0.
void conv_input_scatter(const ConvShape& s, const float* dy, const float* w, float* dx, float* scratch, int threads);
