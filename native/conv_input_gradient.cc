// dX as a stride-1 correlation of padded dY with the flipped kernel. dY goes into a zero plane of width
// Wp = W + pl + (kw−1)·dw, upsampled by the strides (zeros between) and shifted by the kernel's reach, so
//   dX[c, y, x] = Σ_m Σ_tap P[m, y·Wp + x + offset(tap)] · Wf[m, tap, c].
// Three layouts, whichever the cost rule (prefer_scatter, then FMA counts) picks for the shape:
// - planes: a 16-float vector runs along the flat plane (across rows; the Wp − W columns past each row are
//   computed and dropped); a block of 8 channels × 3 vectors reads 3 vectors of P and broadcasts 8 weights
//   per (m, tap): 24 FMAs. Good for channel counts that are not whole vectors (10) on wide maps.
// - pixels: P channels-last, the vector runs along dX's channels (padded to 16); a block of up to 24
//   pixels of one row × channel vectors loads the weight vectors and broadcasts one P value per pixel per
//   (tap, m). No waste for 16, 32, 64 channels, on any map (4×4 wastes half the lanes of a plane), and
//   kernel rows that would only read padding rows are skipped (5×5 on an 8×8 dY: a third of the work).
// - scatter (conv_input_scatter.cc): not a correlation but a GEMM fused with its col2im, so no products with
//   the padding or the stride's zeros at all (channel counts in part vectors: a kernel row's columns padded
//   to whole vectors).
// Threads split the images.
#include "conv_input_gradient.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "conv_input_scatter.h"
#include "parallel.h"

namespace {

typedef float v16 __attribute__((vector_size(64), aligned(4)));
constexpr int64_t V = 16;
constexpr int CR_MAX = 8;  // channels per block
constexpr int QR_MAX = 3;  // vectors per block

inline v16 load(const float* p) { return *reinterpret_cast<const v16*>(p); }
inline void store(float* p, v16 v) { *reinterpret_cast<v16*>(p) = v; }

struct Layout {
  int64_t wp, hp;    // padded plane: width (the flat row stride) and rows
  int64_t span;      // floats per output channel: H·Wp rounded up to whole vectors
  int64_t reach;     // the largest tap offset
  int64_t plane;     // floats per padded dY plane (reads past span + reach stay inside)
  int64_t taps;
};

Layout layout_of(const ConvShape& s) {
  Layout l;
  l.wp = int64_t(s.w) + s.pl + int64_t(s.kw - 1) * s.dw;
  l.hp = int64_t(s.h) + s.pt + int64_t(s.kh - 1) * s.dh;
  l.span = (int64_t(s.h) * l.wp + V - 1) / V * V;
  l.reach = (s.pt + int64_t(s.kh - 1) * s.dh) * l.wp + s.pl + int64_t(s.kw - 1) * s.dw;
  l.plane = std::max(l.hp * l.wp, l.span + l.reach) + V;
  l.taps = int64_t(s.kh) * s.kw;
  return l;
}

// out[c, q0 + …] for CR channels and QR vectors of one image: Σ over m and taps.
template <int CR, int QR>
void tile(const float* planes, int64_t plane, int64_t m, const float* wf, int64_t c, const int64_t* offsets,
          int64_t taps, float* out, int64_t span, int64_t q0) {
  v16 acc[CR][QR];
  for (int r = 0; r < CR; r++)
    for (int v = 0; v < QR; v++) acc[r][v] = v16{};
  for (int64_t k = 0; k < m; k++) {
    const float* p = planes + k * plane + q0;
    const float* w = wf + k * taps * c;
    for (int64_t t = 0; t < taps; t++, w += c) {
      const float* d = p + offsets[t];
      v16 b[QR];
      for (int v = 0; v < QR; v++) b[v] = load(d + v * V);
      for (int r = 0; r < CR; r++) {
        const float a = w[r];
        for (int v = 0; v < QR; v++) acc[r][v] += a * b[v];
      }
    }
  }
  for (int r = 0; r < CR; r++)
    for (int v = 0; v < QR; v++) store(out + r * span + q0 + v * V, acc[r][v]);
}

using Tile = void (*)(const float*, int64_t, int64_t, const float*, int64_t, const int64_t*, int64_t, float*, int64_t,
                      int64_t);

template <int QR, int... CR>
constexpr std::array<Tile, CR_MAX> row_of(std::integer_sequence<int, CR...>) {
  return {&tile<CR + 1, QR>...};
}
const std::array<std::array<Tile, CR_MAX>, QR_MAX> tiles = {
    row_of<1>(std::make_integer_sequence<int, CR_MAX>{}),
    row_of<2>(std::make_integer_sequence<int, CR_MAX>{}),
    row_of<3>(std::make_integer_sequence<int, CR_MAX>{}),
};

// The pixel layout's block: MR pixels of a row (pixel r reads at d + r·m) × NR channel vectors; writes
// dX's channels c0 + … of those pixels, in NCHW (out points at channel c0, pixel x0; plane = H·W).
// Only taps [t0, t1) are summed: the others read rows of zero padding only.
template <int MR, int NR>
void pixel_tile(const float* d, int64_t m, const float* wt, int64_t cp, const int64_t* offsets, int64_t t0,
                int64_t t1, float* out, int64_t plane, int64_t channels) {
  v16 acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NR; v++) acc[r][v] = v16{};
  for (int64_t t = t0; t < t1; t++) {
    const float* p = d + offsets[t];
    const float* w = wt + t * m * cp;
    for (int64_t k = 0; k < m; k++, w += cp) {
      v16 b[NR];
      for (int v = 0; v < NR; v++) b[v] = load(w + v * V);
      for (int r = 0; r < MR; r++) {
        const float a = p[r * m + k];
        for (int v = 0; v < NR; v++) acc[r][v] += a * b[v];
      }
    }
  }
  for (int v = 0; v < NR; v++)
    for (int64_t l = 0; l < V && v * V + l < channels; l++)
      for (int r = 0; r < MR; r++) out[(v * V + l) * plane + r] = acc[r][v][l];
}

constexpr int PIXELS_MAX = 24;
using PixelTile = void (*)(const float*, int64_t, const float*, int64_t, const int64_t*, int64_t, int64_t, float*,
                           int64_t, int64_t);

template <int NR, int... MR>
constexpr std::array<PixelTile, PIXELS_MAX> pixel_row_of(std::integer_sequence<int, MR...>) {
  return {((MR + 1) * NR <= PIXELS_MAX ? &pixel_tile<(MR + 1) * NR <= PIXELS_MAX ? MR + 1 : 1, NR> : nullptr)...};
}
const std::array<std::array<PixelTile, PIXELS_MAX>, 4> pixel_tiles = {
    pixel_row_of<1>(std::make_integer_sequence<int, PIXELS_MAX>{}),
    pixel_row_of<2>(std::make_integer_sequence<int, PIXELS_MAX>{}),
    pixel_row_of<3>(std::make_integer_sequence<int, PIXELS_MAX>{}),
    pixel_row_of<4>(std::make_integer_sequence<int, PIXELS_MAX>{}),
};

// The kernel rows [first, last) whose taps read a row of dY (not only padding) for dX row y (pixel layout).
std::pair<int64_t, int64_t> live_rows(const ConvShape& s, int64_t y) {
  // Flipped tap row i' reads plane row y + pt + i'·dh; dY fills plane rows top … top + (Ho − 1)·sh.
  const int64_t top = int64_t(s.kh - 1) * s.dh, bottom = top + int64_t(s.ho - 1) * s.sh, at = y + s.pt;
  const int64_t first = std::max<int64_t>(0, (top - at + s.dh - 1) / s.dh);
  const int64_t last = std::min<int64_t>(s.kh, bottom >= at ? (bottom - at) / s.dh + 1 : 0);
  return {first, std::max(first, last)};
}

// Vector FMAs each layout issues per image (for the choice between them).
double planes_cost(const ConvShape& s, const Layout& l) { return double(l.span) / V * s.c * l.taps * s.m; }
double pixels_cost(const ConvShape& s) {
  int64_t rows = 0;
  for (int64_t y = 0; y < s.h; y++) {
    const auto [first, last] = live_rows(s, y);
    rows += last - first;
  }
  return double(rows) * s.kw * s.w * ((s.c + V - 1) / V) * s.m;
}

// The pixel layout's register tile: channel vectors × the row's pixels in near-equal chunks (by_pixels).
int64_t pixel_accumulators(const ConvShape& s) {
  const int64_t nr = std::min<int64_t>(4, (s.c + V - 1) / V), most = PIXELS_MAX / nr;
  const int64_t chunks = (s.w + most - 1) / most;
  return (s.w + chunks - 1) / chunks * nr;
}

// The scatter layout does only real products but adds each tile into its plane after an M-long sum, where the
// correlations store once per (pixel, channel): timed on every zoo shape with C % 16 == 0 (AMD Zen 4, batch
// 32), it won where it saved ≥ 10% of the FMAs, or where M ≥ 32 and the pixel tile was small (< 12
// accumulators, latency-bound: 4×4 maps), and lost by up to 40% elsewhere (M = 12–24 with 1-pixel pads).
// Channel counts in part vectors pad each run of its columns: timed likewise, it won at 0.53 and 0.62 of
// the correlation's FMAs (10 → 20 and 88 → 20 channels, 5×5: 24% and 12% faster) and lost 15% at 0.88
// (24 → 24, 3×3 pad 1).
bool prefer_scatter(const ConvShape& s, double correlation, bool by_pixels) {
  if (conv_input_scatter_fmas(s) <= (s.c % V == 0 ? 0.9 : 0.75) * correlation) return true;
  return by_pixels && s.m >= 32 && pixel_accumulators(s) < 12 && conv_input_scatter_fmas(s) <= 1.25 * correlation;
}

}  // namespace

size_t conv_input_gradient_scratch(const ConvShape& s) {
  const Layout l = layout_of(s);
  const int64_t cp = (s.c + V - 1) / V * V;
  const int64_t planes = int64_t(s.n) * s.m * l.plane + int64_t(s.n) * s.c * l.span + int64_t(s.m) * l.taps * s.c;
  const int64_t pixels = int64_t(s.n) * l.hp * l.wp * s.m + PIXELS_MAX * s.m + int64_t(s.m) * l.taps * cp;
  return std::max({size_t(planes), size_t(pixels), conv_input_scatter_scratch(s)});
}

namespace {

// One image's dY into the pixel layout's zeroed, padded, channels-last plane: pixel (oy, ox) at row
// oy·sh + (kh−1)·dh, column ox·sw + (kw−1)·dw. Out of line: inlined into the dispatcher, GCC ran out of
// registers in this loop and it took half the kernel's time.
__attribute__((noinline)) void channels_last(const ConvShape& s, const Layout& l, const float* dy, float* img) {
  const int64_t m = s.m, pixels = int64_t(s.ho) * s.wo;
  const int64_t top = int64_t(s.kh - 1) * s.dh, left = int64_t(s.kw - 1) * s.dw;
  std::fill(img, img + l.hp * l.wp * m, 0.0f);
  for (int64_t oy = 0; oy < s.ho; oy++) {
    const int64_t row = oy * s.sh + top;
    if (row >= l.hp) break;
    for (int64_t ox = 0; ox < s.wo && left + ox * s.sw < l.wp; ox++) {
      float* dst = img + (row * l.wp + left + ox * s.sw) * m;
      const float* src = dy + oy * s.wo + ox;
      for (int64_t k = 0; k < m; k++) dst[k] = src[k * pixels];
    }
  }
}

void by_pixels(const ConvShape& s, const Layout& l, const float* dy, const float* w, float* dx, float* scratch,
               int threads) {
  const int64_t n = s.n, c = s.c, m = s.m, taps = l.taps, cp = (c + V - 1) / V * V;
  const int64_t image = l.hp * l.wp * m;  // floats per channels-last padded dY image
  float* planes = scratch;
  // A pixel block may read up to PIXELS_MAX pixels past a row: the slack stays zero.
  float* wt = planes + n * image + PIXELS_MAX * m;
  // Wt[tap', m, c] = W[m, c, flipped tap], channels padded with zeros to whole vectors.
  std::fill(wt, wt + taps * m * cp, 0.0f);
  for (int64_t k = 0; k < m; k++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t t = 0; t < taps; t++) wt[(t * m + k) * cp + ch] = w[(k * c + ch) * taps + (taps - 1 - t)];
  std::vector<int64_t> offsets(taps);
  for (int64_t t = 0; t < taps; t++)
    offsets[t] = ((s.pt + (t / s.kw) * s.dh) * l.wp + s.pl + (t % s.kw) * s.dw) * m;
  std::fill(planes + n * image, planes + n * image + PIXELS_MAX * m, 0.0f);
  // Channel blocks of up to 4 vectors; the row's pixels in near-equal chunks that fill the registers.
  const int64_t blocks = (cp + 4 * V - 1) / (4 * V);
  const int parts = std::max(1, std::min<int>(threads, int(n)));
  parallel(parts, [&](int part) {
    for (int64_t i = n * part / parts; i < n * (part + 1) / parts; i++) {
      float* img = planes + i * image;
      channels_last(s, l, dy + i * m * s.ho * s.wo, img);
      for (int64_t b = 0; b < blocks; b++) {
        const int64_t c0 = b * 4 * V, nr = std::min<int64_t>(4, (cp - c0) / V);
        const int64_t most = PIXELS_MAX / nr, chunks = (s.w + most - 1) / most, mr = (s.w + chunks - 1) / chunks;
        for (int64_t y = 0; y < s.h; y++) {
          const auto [first, last] = live_rows(s, y);
          for (int64_t x0 = 0; x0 < s.w; x0 += mr) {
            const int64_t count = std::min<int64_t>(mr, s.w - x0);
            pixel_tiles[nr - 1][count - 1](img + (y * l.wp + x0) * m, m, wt + c0, cp, offsets.data(), first * s.kw,
                                           last * s.kw, dx + ((i * c + c0) * s.h + y) * s.w + x0, int64_t(s.h) * s.w,
                                           c - c0);
          }
        }
      }
    }
  });
}

}  // namespace

namespace {

void by_planes(const ConvShape& s, const Layout& l, const float* dy, const float* w, float* dx, float* scratch,
               int threads) {
  const int64_t n = s.n, c = s.c, m = s.m, taps = l.taps;
  float* planes = scratch;
  float* out = planes + n * m * l.plane;
  float* wf = out + n * c * l.span;
  // Wf[m, tap', c] = W[m, c, kh−1−i', kw−1−j']: the flipped kernel, channels innermost for the broadcasts.
  for (int64_t k = 0; k < m; k++)
    for (int64_t t = 0; t < taps; t++)
      for (int64_t ch = 0; ch < c; ch++)
        wf[(k * taps + t) * c + ch] = w[(k * c + ch) * taps + (taps - 1 - t)];
  std::vector<int64_t> offsets(taps);
  for (int64_t t = 0; t < taps; t++) offsets[t] = (s.pt + (t / s.kw) * s.dh) * l.wp + s.pl + (t % s.kw) * s.dw;
  // dY[oy, ox] sits at plane row oy·sh + (kh−1)·dh, column ox·sw + (kw−1)·dw; rows and columns past the
  // plane only reach dX positions past H, W (a trailing pad wider than the kernel): left out.
  const int64_t top = int64_t(s.kh - 1) * s.dh, left = int64_t(s.kw - 1) * s.dw;
  const int parts = std::max(1, std::min<int>(threads, int(n * ((c + CR_MAX - 1) / CR_MAX))));
  parallel(std::min<int>(parts, int(n)), [&](int part) {
    const int ps = std::min<int>(parts, int(n));
    for (int64_t i = n * part / ps; i < n * (part + 1) / ps; i++) {
      float* image = planes + i * m * l.plane;
      std::fill(image, image + m * l.plane, 0.0f);
      for (int64_t k = 0; k < m; k++)
        for (int64_t oy = 0; oy < s.ho; oy++) {
          const int64_t row = oy * s.sh + top;
          if (row >= l.hp) break;
          const float* src = dy + ((i * m + k) * s.ho + oy) * s.wo;
          float* dst = image + k * l.plane + row * l.wp + left;
          if (s.sw == 1) {
            std::memcpy(dst, src, sizeof(float) * std::min<int64_t>(s.wo, l.wp - left));
          } else {
            for (int64_t ox = 0; ox < s.wo && left + ox * s.sw < l.wp; ox++) dst[ox * s.sw] = src[ox];
          }
        }
    }
  });
  const int64_t blocks = (c + CR_MAX - 1) / CR_MAX, vectors = l.span / V;
  const int64_t items = n * blocks;
  parallel(parts, [&](int part) {
    for (int64_t it = part; it < items; it += parts) {
      const int64_t i = it / blocks, c0 = (it % blocks) * CR_MAX;
      const int cr = int(std::min<int64_t>(CR_MAX, c - c0));
      const float* image = planes + i * m * l.plane;
      float* o = out + (i * c + c0) * l.span;
      for (int64_t q = 0; q < vectors; q += QR_MAX) {
        const int qr = int(std::min<int64_t>(QR_MAX, vectors - q));
        tiles[qr - 1][cr - 1](image, l.plane, m, wf + c0, c, offsets.data(), taps, o, l.span, q * V);
      }
      // Crop each row's Wp − W extra columns.
      for (int64_t r = 0; r < cr; r++)
        for (int64_t y = 0; y < s.h; y++)
          std::memcpy(dx + ((i * c + c0 + r) * s.h + y) * s.w, o + r * l.span + y * l.wp, sizeof(float) * s.w);
    }
  });
}

}  // namespace

void conv_input_gradient(const ConvShape& s, const float* dy, const float* w, float* dx, float* scratch,
                         int threads) {
  const Layout l = layout_of(s);
  const double pixels = pixels_cost(s), planes = planes_cost(s, l);
  if (conv_input_scatter_fits(s) && prefer_scatter(s, std::min(pixels, planes), pixels <= planes))
    return conv_input_scatter(s, dy, w, dx, scratch, threads);
  if (pixels <= planes) return by_pixels(s, l, dy, w, dx, scratch, threads);
  by_planes(s, l, dy, w, dx, scratch, threads);
}
