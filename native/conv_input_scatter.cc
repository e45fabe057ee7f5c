// dX = Σ over dY pixels p and output channels m of dY[m, p] · W[m, :, tap] added at p's patch: a GEMM
// [pixels × M] · [M × taps·C] whose register tile (up to 6 pixels × 4 vectors of taps·C) is added straight
// into a channels-last dX plane instead of stored as columns (the col2im fused away). Only real products
// are computed: the correlation layouts (conv_input_gradient.cc) also multiply the zero padding around dY
// (a 5×5 kernel on an 8×8 dY: about a third of their work), and dY needs no transposing (its pixels are
// broadcast from NCHW).
// A vector of Wᵀ's columns must land on adjacent plane floats: the columns go in runs that are adjacent in
// the plane — a whole kernel row (kw taps × C) when its taps are adjacent (dw = 1), else one tap (C) — each
// run padded to whole vectors with zero weights, and a vector's lanes past its run masked off before the
// add (so an infinite dY cannot put NaN into the plane positions after a run). C = 10, 5×5: runs of 50
// floats in 64, 78% of the lanes real, where the correlations use about a third.
#include "conv_input_scatter.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "parallel.h"

namespace {

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));
constexpr int64_t V = 16;
constexpr int PIXELS = 6;   // dY pixels per tile
constexpr int VECTORS = 4;  // vectors of taps·C per tile

inline v16 load(const float* p) { return *reinterpret_cast<const v16*>(p); }
inline void store(float* p, v16 v) { *reinterpret_cast<v16*>(p) = v; }

// The plane: every position a tap of a dY pixel reaches (rows oy·sh + i·dh, columns ox·sw + j·dw), C
// floats each; dX[y, x] is plane[y + pt, x + pl] where that is inside it.
int64_t plane_rows(const ConvShape& s) { return int64_t(s.ho - 1) * s.sh + int64_t(s.kh - 1) * s.dh + 1; }
int64_t plane_cols(const ConvShape& s) { return int64_t(s.wo - 1) * s.sw + int64_t(s.kw - 1) * s.dw + 1; }
int64_t plane_size(const ConvShape& s) { return plane_rows(s) * plane_cols(s) * s.c; }
// A plane and its slack: the masked lanes past the last run read and write back up to V − 1 floats past it.
int64_t plane_stride(const ConvShape& s) { return plane_size(s) + V; }

// The runs of Wᵀ's columns (see the top): how many, their floats, and their floats in whole vectors.
struct Runs {
  int64_t count, length, padded;
  bool rows;  // a run is a kernel row, else one tap
};
Runs runs_of(const ConvShape& s) {
  const bool rows = s.dw == 1;
  const int64_t length = rows ? int64_t(s.kw) * s.c : s.c;
  return {rows ? int64_t(s.kh) : int64_t(s.kh) * s.kw, length, (length + V - 1) / V * V, rows};
}

// acc[r][v] = Σ_k dY[k, p0 + r] · Wt[k, q0 + v …], its lanes in mask[v] added into the plane at base[r] + coff[v].
template <int PR, int NV>
void tile(const float* dy, int64_t pixels, int64_t m, const float* wt, int64_t cols, const int64_t* base,
          const int64_t* coff, const int32_t* mask, float* plane) {
  v16 acc[PR][NV];
  for (int r = 0; r < PR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = v16{};
  for (int64_t k = 0; k < m; k++) {
    const float* wk = wt + k * cols;
    const float* d = dy + k * pixels;
    v16 b[NV];
    for (int v = 0; v < NV; v++) b[v] = load(wk + v * V);
    for (int r = 0; r < PR; r++) {
      const float a = d[r];
      for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < PR; r++)
    for (int v = 0; v < NV; v++) {
      float* q = plane + base[r] + coff[v];
      store(q, load(q) + (v16)((v16i)acc[r][v] & *reinterpret_cast<const v16i*>(mask + v * V)));
    }
}

using Tile = void (*)(const float*, int64_t, int64_t, const float*, int64_t, const int64_t*, const int64_t*,
                     const int32_t*, float*);

template <int NV, int... PR>
constexpr std::array<Tile, PIXELS> row_of(std::integer_sequence<int, PR...>) {
  return {&tile<PR + 1, NV>...};
}
const std::array<std::array<Tile, PIXELS>, VECTORS> tiles = {
    row_of<1>(std::make_integer_sequence<int, PIXELS>{}),
    row_of<2>(std::make_integer_sequence<int, PIXELS>{}),
    row_of<3>(std::make_integer_sequence<int, PIXELS>{}),
    row_of<4>(std::make_integer_sequence<int, PIXELS>{}),
};

}  // namespace

bool conv_input_scatter_fits(const ConvShape& s) {
  // Rows and columns fit int64 (sums of two products of positive int32s, as the binding checks them);
  // their product may not, so it is bounded in doubles.
  const int64_t rows = plane_rows(s), cols = plane_cols(s);
  return rows <= int64_t(s.h) + s.pt + int64_t(s.kh - 1) * s.dh && cols <= int64_t(s.w) + s.pl + int64_t(s.kw - 1) * s.dw &&
         double(rows) * double(cols) * s.c <= 1e9;
}

size_t conv_input_scatter_scratch(const ConvShape& s) {
  if (!conv_input_scatter_fits(s)) return 0;
  const Runs r = runs_of(s);
  return size_t(int64_t(s.n) * plane_stride(s) + int64_t(s.m) * r.count * r.padded);
}

double conv_input_scatter_fmas(const ConvShape& s) {
  const Runs r = runs_of(s);
  return double(s.ho) * s.wo * double(r.count) * double(r.padded / V) * s.m;
}

void conv_input_scatter(const ConvShape& s, const float* dy, const float* w, float* dx, float* scratch, int threads) {
  const Runs runs = runs_of(s);
  const int64_t n = s.n, c = s.c, m = s.m, taps = int64_t(s.kh) * s.kw, cols = runs.count * runs.padded,
                vectors = cols / V;
  const int64_t pixels = int64_t(s.ho) * s.wo, rows = plane_rows(s), width = plane_cols(s), plane = plane_stride(s);
  float* planes = scratch;
  float* wt = planes + n * plane;
  // Wt[m, run, l] = W[m, c, tap] (l = j·C + ch in a kernel row's run, ch in a tap's), zero past the run.
  std::fill(wt, wt + m * cols, 0.0f);
  const int64_t per_run = runs.rows ? s.kw : 1;  // taps in a run
  for (int64_t k = 0; k < m; k++)
    for (int64_t u = 0; u < runs.count; u++)
      for (int64_t j = 0; j < per_run; j++) {
        float* dst = wt + k * cols + u * runs.padded + j * c;
        const float* src = w + k * c * taps + u * per_run + j;
        for (int64_t ch = 0; ch < c; ch++) dst[ch] = src[ch * taps];
      }
  // Plane offsets of each column vector (its run's first tap, and where in the run it starts) and of each
  // dY pixel; each vector's lanes inside its run.
  std::vector<int64_t> coff(vectors), base(pixels);
  std::vector<int32_t> mask(vectors * V);  // lane masks, V per vector
  for (int64_t q = 0; q < vectors; q++) {
    const int64_t u = q * V / runs.padded, l0 = q * V % runs.padded, t = runs.rows ? u * s.kw : u;
    coff[q] = ((t / s.kw) * s.dh * width + (t % s.kw) * s.dw) * c + l0;
    for (int64_t lane = 0; lane < V; lane++) mask[q * V + lane] = l0 + lane < runs.length ? -1 : 0;
  }
  for (int64_t p = 0; p < pixels; p++) base[p] = ((p / s.wo) * s.sh * width + (p % s.wo) * s.sw) * c;
  const int parts = std::max(1, std::min<int>(threads, int(n)));
  parallel(parts, [&](int part) {
    for (int64_t i = n * part / parts; i < n * (part + 1) / parts; i++) {
      float* image = planes + i * plane;
      std::fill(image, image + plane, 0.0f);
      const float* d = dy + i * m * pixels;
      // Column blocks outer: their weights (M × 4 vectors) stay in L1 while every pixel passes.
      for (int64_t q0 = 0; q0 < vectors; q0 += VECTORS) {
        const int64_t nv = std::min<int64_t>(VECTORS, vectors - q0);
        for (int64_t p0 = 0; p0 < pixels; p0 += PIXELS) {
          const int64_t pr = std::min<int64_t>(PIXELS, pixels - p0);
          tiles[nv - 1][pr - 1](d + p0, pixels, m, wt + q0 * V, cols, base.data() + p0, coff.data() + q0,
                                mask.data() + q0 * V, image);
        }
      }
      // Into NCHW: dX[c, y, x] = plane[y + pt, x + pl, c]; zero past the plane (a trailing pad no tap reached).
      for (int64_t y = 0; y < s.h; y++)
        for (int64_t x = 0; x < s.w; x++) {
          const int64_t py = y + s.pt, px = x + s.pl;
          const bool inside = py < rows && px < width;
          const float* src = image + (py * width + px) * c;
          for (int64_t ch = 0; ch < c; ch++) dx[((i * c + ch) * s.h + y) * s.w + x] = inside ? src[ch] : 0.0f;
        }
    }
  });
}
