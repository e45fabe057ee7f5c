// dX of a convolution as a GEMM fused with its col2im:
// per dY pixel, dX's patch += Wᵀ·dY (conv_input_gradient.cc picks it when its cost is the lowest).
#pragma once

#include <cstddef>

#include "conv_weight_gradient.h"  // ConvShape

// Whether it may run this shape: its dX plane (every position a tap of a dY pixel
// reaches) within the input, its leading pad and the kernel's reach — true of every Conv whose trailing pad
// is at most that reach (all of the zoo's); wider ones take the correlation layouts. The binding cannot
// check Ho, Wo against trailing pads it is not given: a made-up Ho, Wo must not size the plane past memory
// (or past int64).
bool conv_input_scatter_fits(const ConvShape& s);

// Floats of scratch it needs for this shape (0 where it does not fit).
size_t conv_input_scatter_scratch(const ConvShape& s);

// Vector FMAs it issues per image (conv_input_gradient.cc's unit): the convolution's products, each run of
// columns rounded up to whole vectors.
double conv_input_scatter_fmas(const ConvShape& s);

// Overwrites dx (N·C·H·W) from dy (N·M·Ho·Wo) and w (M·C·kh·kw).
void conv_input_scatter(const ConvShape& s, const float* dy, const float* w, float* dx, float* scratch, int threads);
