// dW[m, tap] = Σ_n,oy,ox X[n, c, oy·sh + i·dh, ox·sw + j·dw] · dY[n, m, oy, ox] for tap = (c, i, j), with no
// im2col: dY goes channels-last (dYt[n, oy, ox, m], M padded to whole vectors) and X zero-padded, then a
// register block of taps × output-channel vectors walks every (n, oy, ox) once: one vector load of dYt and
// one broadcast of X per tap and FMA. Threads split the taps (each writes its own dW entries).
#include "conv_weight_gradient.h"
#include "parallel.h"

#include <algorithm>
#include <array>
#include <utility>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace {

// GCC/Clang vector extension: 16 floats, any alignment; -march picks the instructions (zmm on AVX-512).
typedef float v16 __attribute__((vector_size(64), aligned(4)));
constexpr int64_t V = 16;
constexpr int ACCUMULATORS = 24;  // of the 32 vector registers: the rest hold dYt and broadcasts
constexpr int NR_MAX = 4;         // output-channel vectors per block (64 channels)

inline v16 load(const float* p) { return *reinterpret_cast<const v16*>(p); }

struct Geometry {
  int64_t n, m, mp;      // images, output channels, channels per dYt row (whole vectors)
  int64_t ho, wo;        // output size
  int64_t hp, wp;        // padded input plane
  int64_t image;         // floats per padded image (C·hp·wp)
  int64_t sh, sw;        // strides
};

// acc[t][v] = Σ over all positions of xp[image + row + col + offsets[t]] · dYt[position, m0 + 16v ...]; the
// MR taps' results for channels m0… are written to dw[m, tap0 + t] (dW is [M, K]).
template <int MR, int NR>
void block(const Geometry& g, const float* xp, const float* dyt, const int64_t* offsets, int64_t m0, float* dw,
           int64_t k, int64_t tap0) {
  v16 acc[MR][NR];
  for (int t = 0; t < MR; t++)
    for (int v = 0; v < NR; v++) acc[t][v] = v16{};
  int64_t off[MR];
  for (int t = 0; t < MR; t++) off[t] = offsets[t];
  for (int64_t n = 0; n < g.n; n++) {
    const float* image = xp + n * g.image;
    const float* d = dyt + n * g.ho * g.wo * g.mp + m0;
    for (int64_t oy = 0; oy < g.ho; oy++) {
      const float* row = image + oy * g.sh * g.wp;
      for (int64_t ox = 0; ox < g.wo; ox++, d += g.mp) {
        const float* at = row + ox * g.sw;
        v16 b[NR];
#pragma GCC unroll 4
        for (int v = 0; v < NR; v++) b[v] = load(d + v * V);
        // Unrolled whole, or GCC keeps the accumulators in memory (MR = 24 passed its default limit).
#pragma GCC unroll 24
        for (int t = 0; t < MR; t++) {
          const float a = at[off[t]];
#pragma GCC unroll 4
          for (int v = 0; v < NR; v++) acc[t][v] += a * b[v];
        }
      }
    }
  }
  const int64_t channels = std::min<int64_t>(NR * V, g.m - m0);
  for (int t = 0; t < MR; t++)
    for (int64_t c = 0; c < channels; c++) dw[(m0 + c) * k + tap0 + t] = acc[t][c / V][c % V];
}

using Block = void (*)(const Geometry&, const float*, const float*, const int64_t*, int64_t, float*, int64_t, int64_t);

// blocks[NR − 1][MR − 1]: every block shape with MR · NR ≤ ACCUMULATORS.
template <int NR, int... MR>
constexpr std::array<Block, ACCUMULATORS> row_of(std::integer_sequence<int, MR...>) {
  return {((MR + 1) * NR <= ACCUMULATORS ? &block<(MR + 1) * NR <= ACCUMULATORS ? MR + 1 : 1, NR> : nullptr)...};
}
const std::array<std::array<Block, ACCUMULATORS>, NR_MAX> blocks = {
    row_of<1>(std::make_integer_sequence<int, ACCUMULATORS>{}),
    row_of<2>(std::make_integer_sequence<int, ACCUMULATORS>{}),
    row_of<3>(std::make_integer_sequence<int, ACCUMULATORS>{}),
    row_of<4>(std::make_integer_sequence<int, ACCUMULATORS>{}),
};

struct Sizes {
  int64_t hp, wp, mp, xp, dyt;
};

// The most floats of scratch a shape may take (4 GB): the zoo's take a few MB, and a pad, stride or made-up
// Ho, Wo near 2³¹ must end in an error, not in sizes that wrap around or a multi-GB allocation.
constexpr double MAX_SCRATCH = 1e9;

// The padded plane reaches every tap of every output position (and no further than the real padding). All
// in int64 (every term a sum of int32 products), the totals bounded in doubles before they are multiplied.
Sizes sizes_of(const ConvShape& s) {
  const int64_t hp =
      std::max<int64_t>(int64_t(s.h) + s.pt, int64_t(s.ho - 1) * s.sh + int64_t(s.kh - 1) * s.dh + 1);
  const int64_t wp =
      std::max<int64_t>(int64_t(s.w) + s.pl, int64_t(s.wo - 1) * s.sw + int64_t(s.kw - 1) * s.dw + 1);
  const int64_t mp = (s.m + V - 1) / V * V;
  const double total = double(s.n) * s.c * double(hp) * double(wp) + double(s.n) * s.ho * s.wo * double(mp);
  if (total > MAX_SCRATCH) throw std::length_error("the padded shape needs more than 4 GB of scratch");
  return {hp, wp, mp, int64_t(s.n) * s.c * hp * wp, int64_t(s.n) * s.ho * s.wo * mp};
}

// One image's dY [M, P] as dYt [P, mp], the padding channels zero. Position by position (contiguous writes,
// strided reads) and out of line: channel by channel, every write touched a new cache line, and inlined, GCC
// spilled its registers; either way this copy took as long as the products for a 1-channel input.
__attribute__((noinline)) void channels_last_scalar(const float* dy, int64_t m, int64_t p0, int64_t positions,
                                                    int64_t mp, float* out) {
  for (int64_t p = p0; p < positions; p++) {
    float* row = out + p * mp;
    for (int64_t k = 0; k < m; k++) row[k] = dy[k * positions + p];
    for (int64_t k = m; k < mp; k++) row[k] = 0.0f;
  }
}

#if defined(__GNUC__) && !defined(__clang__)
// 16 channels × 16 positions at a time: 16 vector loads, a 16×16 transpose in registers (four rounds of
// two-row permutes, each swapping the off-diagonal b×b blocks of every 2b×2b block: b = 8, 4, 2, 1), 16
// vector stores. The scalar copy above moved about one float a cycle: a 1-channel input's dY copy took
// 45–80% of the kernel (1 → 10, 16, 32 channels on 24–28-wide maps).
typedef int32_t v16i __attribute__((vector_size(64)));

template <int B>
inline void swap_blocks(v16* r) {
  constexpr v16i low = {0 & B ? 16 + 0 - B : 0,     1 & B ? 16 + 1 - B : 1,     2 & B ? 16 + 2 - B : 2,
                        3 & B ? 16 + 3 - B : 3,     4 & B ? 16 + 4 - B : 4,     5 & B ? 16 + 5 - B : 5,
                        6 & B ? 16 + 6 - B : 6,     7 & B ? 16 + 7 - B : 7,     8 & B ? 16 + 8 - B : 8,
                        9 & B ? 16 + 9 - B : 9,     10 & B ? 16 + 10 - B : 10,  11 & B ? 16 + 11 - B : 11,
                        12 & B ? 16 + 12 - B : 12,  13 & B ? 16 + 13 - B : 13,  14 & B ? 16 + 14 - B : 14,
                        15 & B ? 16 + 15 - B : 15};
  constexpr v16i high = {0 & B ? 16 + 0 : 0 + B,    1 & B ? 16 + 1 : 1 + B,    2 & B ? 16 + 2 : 2 + B,
                         3 & B ? 16 + 3 : 3 + B,    4 & B ? 16 + 4 : 4 + B,    5 & B ? 16 + 5 : 5 + B,
                         6 & B ? 16 + 6 : 6 + B,    7 & B ? 16 + 7 : 7 + B,    8 & B ? 16 + 8 : 8 + B,
                         9 & B ? 16 + 9 : 9 + B,    10 & B ? 16 + 10 : 10 + B, 11 & B ? 16 + 11 : 11 + B,
                         12 & B ? 16 + 12 : 12 + B, 13 & B ? 16 + 13 : 13 + B, 14 & B ? 16 + 14 : 14 + B,
                         15 & B ? 16 + 15 : 15 + B};
  for (int i = 0; i < 16; i++) {
    if (i & B) continue;
    const v16 a = r[i], b = r[i + B];
    r[i] = __builtin_shuffle(a, b, low);
    r[i + B] = __builtin_shuffle(a, b, high);
  }
}

__attribute__((noinline)) void channels_last(const float* dy, int64_t m, int64_t positions, int64_t mp, float* out) {
  const int64_t whole = positions / V * V;
  for (int64_t p0 = 0; p0 < whole; p0 += V)
    for (int64_t k0 = 0; k0 < mp; k0 += V) {
      v16 r[16];
      for (int64_t kk = 0; kk < V; kk++) r[kk] = k0 + kk < m ? load(dy + (k0 + kk) * positions + p0) : v16{};
      swap_blocks<8>(r);
      swap_blocks<4>(r);
      swap_blocks<2>(r);
      swap_blocks<1>(r);
      for (int64_t l = 0; l < V; l++) *reinterpret_cast<v16*>(out + (p0 + l) * mp + k0) = r[l];
    }
  channels_last_scalar(dy, m, whole, positions, mp, out);
}
#else
void channels_last(const float* dy, int64_t m, int64_t positions, int64_t mp, float* out) {
  channels_last_scalar(dy, m, 0, positions, mp, out);
}
#endif

}  // namespace

size_t conv_weight_gradient_scratch(const ConvShape& s, int /*threads*/) {
  const Sizes z = sizes_of(s);
  return size_t(z.xp + z.dyt + V);
}

void conv_weight_gradient(const ConvShape& s, const float* x, const float* dy, float* dw, float* scratch,
                          int threads) {
  const Sizes z = sizes_of(s);
  const int64_t taps = int64_t(s.kh) * s.kw, k = int64_t(s.c) * taps, P = int64_t(s.ho) * s.wo;
  float* xp = scratch;
  float* dyt = scratch + z.xp;
  const int parts = std::max(1, std::min(threads, s.n));
  // X zero-padded, and dY channels-last with the padding channels zero (they only feed discarded lanes).
  parallel(parts, [&](int part) {
    for (int64_t n = int64_t(s.n) * part / parts; n < int64_t(s.n) * (part + 1) / parts; n++) {
      for (int64_t c = 0; c < s.c; c++) {
        float* plane = xp + (n * s.c + c) * z.hp * z.wp;
        std::fill(plane, plane + z.hp * z.wp, 0.0f);
        for (int64_t y = 0; y < s.h; y++)
          std::memcpy(plane + (y + s.pt) * z.wp + s.pl, x + ((n * s.c + c) * s.h + y) * s.w, sizeof(float) * s.w);
      }
      channels_last(dy + n * s.m * P, s.m, P, z.mp, dyt + n * P * z.mp);
    }
  });
  std::vector<int64_t> offsets(k);
  for (int64_t t = 0; t < k; t++) {
    const int64_t c = t / taps, i = (t % taps) / s.kw, j = t % s.kw;
    offsets[t] = (c * z.hp + i * s.dh) * z.wp + j * s.dw;
  }
  const Geometry g{s.n, s.m, z.mp, s.ho, s.wo, z.hp, z.wp, s.c * z.hp * z.wp, s.sh, s.sw};
  // Work items: (channel block of up to 64, tap block); threads take every parts-th one.
  struct Item {
    int64_t m0, tap0;
    int nr, mr;
  };
  std::vector<Item> items;
  for (int64_t m0 = 0; m0 < s.m; m0 += NR_MAX * V) {
    const int nr = int(std::min<int64_t>(NR_MAX, (s.m - m0 + V - 1) / V));
    // Equal tap blocks: 25 taps as 13 + 12, not 24 + a lone one that costs a whole pass.
    const int64_t count = (k + ACCUMULATORS / nr - 1) / (ACCUMULATORS / nr), mr = (k + count - 1) / count;
    for (int64_t tap0 = 0; tap0 < k; tap0 += mr) items.push_back({m0, tap0, nr, int(std::min<int64_t>(mr, k - tap0))});
  }
  const int workers = std::max(1, std::min<int>(parts, int(items.size())));
  parallel(workers, [&](int part) {
    for (size_t it = part; it < items.size(); it += workers) {
      const Item& w = items[it];
      blocks[w.nr - 1][w.mr - 1](g, xp, dyt, offsets.data() + w.tap0, w.m0, dw, k, w.tap0);
    }
  });
}
