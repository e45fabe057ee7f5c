// A fully connected layer's weight gradient by the machine's OpenBLAS, found at run time (dlopen): the same
// sgemm PyTorch's Linear runs on these machines. No BLAS, or a build without OpenBLAS's own entry points
// (the reference BLAS is several times slower than ORT's MLAS): blas_name() is null and the trainer keeps
// ORT's Gemm, which equals OpenBLAS's speed but hands dW out as a copy (1.6 MB per step for mlp's first layer).
#pragma once

#include <cstdint>

// The library in use ("OpenBLAS 0.3.21 …", from openblas_get_config), or nullptr when none was found.
// The first call loads it (OpenBLAS then starts its thread pool, idle: every call here runs on its caller).
const char* blas_name();

// dW[out, in] = dYᵀ·X for X [n, in] and dY [n, out] (overwrites dw), on up to `threads` threads (rows of dW
// split between them, each an OpenBLAS call on one thread: its own pool would spin against ORT's). Needs
// blas_name().
void linear_weight_gradient(int64_t n, int64_t in, int64_t out, const float* x, const float* dy, float* dw,
                            int threads);
