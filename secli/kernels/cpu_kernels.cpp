// secli's CPU kernels for the fused SE blocks (see cpu_kernels.py, which compiles and loads this).
//
// Every kernel works on (N, C, HW) tensors in one of two layouts: NCHW (a row of HW values per
// (n, c)) or channels_last (a row of C values per (n, hw)); `s`, `shift` and `ds` are (N, C)
// per-channel values. Each kernel is one pass: it reads its inputs once and writes its outputs
// once. The arithmetic is written as the eager composition does it (a product, then a sum, no
// fused multiply-add: the file is compiled with -ffp-contract=off), so forward results are
// bit-identical to `relu(u * s + identity)`. Threads: OpenMP, with the count torch uses (the
// caller passes torch.get_num_threads()); torch's own libgomp is the one loaded.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

typedef int64_t i64;

namespace {

template <class T> inline T relu(T v) { return v < T(0) ? T(0) : v; }  // NaN passes, as torch.relu

// sum of x[0..n) with four independent vector accumulators: one accumulator makes a long row's
// sum wait on the adder's latency (about 4 cycles per vector), four keep it at load speed.
template <class T> inline T row_sum(const T* x, i64 n) {
  typedef T V __attribute__((vector_size(32)));
  constexpr i64 L = 32 / sizeof(T);
  V a0 = {}, a1 = {}, a2 = {}, a3 = {};
  i64 i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    V v0, v1, v2, v3;
    std::memcpy(&v0, x + i, sizeof(V)); std::memcpy(&v1, x + i + L, sizeof(V));
    std::memcpy(&v2, x + i + 2 * L, sizeof(V)); std::memcpy(&v3, x + i + 3 * L, sizeof(V));
    a0 += v0; a1 += v1; a2 += v2; a3 += v3;
  }
  for (; i + L <= n; i += L) {  // rows of 49 (7 x 7) or 16 would otherwise end in a long scalar tail
    V v0;
    std::memcpy(&v0, x + i, sizeof(V));
    a0 += v0;
  }
  V a = (a0 + a1) + (a2 + a3);
  T acc = 0;
  for (i64 k = 0; k < L; ++k) acc += a[k];
  for (; i < n; ++i) acc += x[i];
  return acc;
}
template <class T> inline T mask(T out, T g) { return out <= T(0) ? T(0) : g; }  // threshold_backward(g, out, 0)

// out = relu(u * s + id)
template <class T> void sar_nchw(T* out, const T* u, const T* s, const T* id, i64 rows, i64 hw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 r = 0; r < rows; ++r) {
    const T sv = s[r];
    const T* ur = u + r * hw; const T* ir = id + r * hw; T* o = out + r * hw;
#pragma omp simd
    for (i64 i = 0; i < hw; ++i) { T p = ur[i] * sv; o[i] = relu(p + ir[i]); }
  }
}
template <class T> void sar_nhwc(T* out, const T* u, const T* s, const T* id, i64 n, i64 hw, i64 c, int threads) {
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
  for (i64 b = 0; b < n; ++b)
    for (i64 p = 0; p < hw; ++p) {
      const i64 off = (b * hw + p) * c; const T* sr = s + b * c;
#pragma omp simd
      for (i64 k = 0; k < c; ++k) { T q = u[off + k] * sr[k]; out[off + k] = relu(q + id[off + k]); }
    }
}

// out = x * s + shift (shift null: out = x * s)
template <class T> void ss_nchw(T* out, const T* x, const T* s, const T* shift, i64 rows, i64 hw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 r = 0; r < rows; ++r) {
    const T sv = s[r], bv = shift ? shift[r] : T(0);  // no shift: the plain scale
    const T* xr = x + r * hw; T* o = out + r * hw;
#pragma omp simd
    for (i64 i = 0; i < hw; ++i) { T p = xr[i] * sv; o[i] = shift ? p + bv : p; }
  }
}
template <class T> void ss_nhwc(T* out, const T* x, const T* s, const T* shift, i64 n, i64 hw, i64 c, int threads) {
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
  for (i64 b = 0; b < n; ++b)
    for (i64 p = 0; p < hw; ++p) {
      const i64 off = (b * hw + p) * c; const T* sr = s + b * c;
      if (shift) {
        const T* br = shift + b * c;
#pragma omp simd
        for (i64 k = 0; k < c; ++k) { T q = x[off + k] * sr[k]; out[off + k] = q + br[k]; }
      } else {
#pragma omp simd
        for (i64 k = 0; k < c; ++k) out[off + k] = x[off + k] * sr[k];
      }
    }
}

// ds = sum_hw(g' * x) with g' = mask(out, grad) when `out` is given (then g' is written to gm),
// else g' = grad. The product is never written.
template <class T> void dot_nchw(T* gm, T* ds, const T* grad, const T* out, const T* x, i64 rows, i64 hw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 r = 0; r < rows; ++r) {
    const T* gr = grad + r * hw; const T* xr = x + r * hw;
    T acc = 0;
    if (out) {
      const T* orow = out + r * hw; T* go = gm + r * hw;
#pragma omp simd reduction(+ : acc)
      for (i64 i = 0; i < hw; ++i) { T v = mask(orow[i], gr[i]); go[i] = v; acc += v * xr[i]; }
    } else {
#pragma omp simd reduction(+ : acc)
      for (i64 i = 0; i < hw; ++i) acc += gr[i] * xr[i];
    }
    ds[r] = acc;
  }
}
template <class T> void dot_nhwc(T* gm, T* ds, const T* grad, const T* out, const T* x, i64 n, i64 hw, i64 c, int threads) {
  for (i64 k = 0; k < n * c; ++k) ds[k] = T(0);
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> acc(c);
    for (i64 b = 0; b < n; ++b) {
      for (i64 k = 0; k < c; ++k) acc[k] = T(0);
#pragma omp for schedule(static) nowait
      for (i64 p = 0; p < hw; ++p) {
        const i64 off = (b * hw + p) * c;
        if (out) {
#pragma omp simd
          for (i64 k = 0; k < c; ++k) { T v = mask(out[off + k], grad[off + k]); gm[off + k] = v; acc[k] += v * x[off + k]; }
        } else {
#pragma omp simd
          for (i64 k = 0; k < c; ++k) acc[k] += grad[off + k] * x[off + k];
        }
      }
#pragma omp critical
      for (i64 k = 0; k < c; ++k) ds[b * c + k] += acc[k];
    }
  }
}


// The whole SE block without gradients, one image at a time: z = mean_hw(u); h = relu(W1 z + b1);
// s = gate(W2 h + b2); then out = relu(u * s + id) when `id` is given, else out = u * s. Reads u
// twice (pool, scale) and writes out once; `out` may be `u` (in place). The FCs are plain loops:
// at C x C/16 weights they are cheaper than a BLAS call's set-up at batch 1. `s_out` (N, C)
// receives the gates; null when the caller has no use for them (a network's forward).
// gate: 0 sigmoid, 1 tanh, 2 relu, 3 hardsigmoid. b1/b2 may be null.
template <class T> inline T apply_gate(int gate, T v) {
  switch (gate) {
    case 0: return T(1) / (T(1) + std::exp(-v));
    case 1: return std::tanh(v);
    case 2: return relu(v);
    default: { T r = v / T(6) + T(0.5); return r < T(0) ? T(0) : (r > T(1) ? T(1) : r); }
  }
}
// e^x for float in plain arithmetic, so that a loop of it vectorises (libm's expf is a call per
// value: about 14 ns, 36 us for a 2048-channel gate at batch 1). Cephes' expf: x = n ln2 + r with
// |r| <= ln2 / 2, e^r by its degree-7 Taylor polynomial (relative error about 1e-7, as expf),
// 2^n built in the exponent bits. x is clamped to [-87.3, 88.3], where n stays in [-126, 127]
// and 2^n a normal float; as the sigmoid's exp(-v), that moves a gate beyond |v| = 87 by under
// 1e-38 (gates of 0 or 1 to float precision either way). NaN comes out NaN: the comparisons
// leave it in x, where it poisons the polynomial, and n is taken as 0 for it (converting NaN to
// an integer is undefined behaviour).
inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  n = n == n ? n : 0.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 in two parts (Cephes C1, C2)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;  // n + 127 in [1, 254]
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
// the gate over a row of pre-activations, in place; the float sigmoid through fast_exp (vectorised)
template <class T> inline void gate_row(int gate, T* s, i64 c) {
  if constexpr (std::is_same_v<T, float>) {
    if (gate == 0) {
#pragma omp simd
      for (i64 k = 0; k < c; ++k) s[k] = 1.0f / (1.0f + fast_exp(-s[k]));
      return;
    }
  }
  for (i64 k = 0; k < c; ++k) s[k] = apply_gate(gate, s[k]);
}
// y[r] = sum_i w[r * n + i] * x[i] for r in [0, rows): an FC layer's matrix-vector product at
// batch 1, where the cost is reading w (the layers of SE-ResNet-50 hold 10 MB). Four rows a
// quarter of the matrix apart are read together, one vector accumulator each: four sequential
// streams keep more memory reads in flight than one, and each x vector loaded serves four rows.
// Measured on this project's CPU (benchmarks/se_kernel_ab.py: 1 thread, weights out of cache,
// ResNet-50's 16 sites at batch 1), the whole-block kernel beyond resnet50's add + ReLU there:
// 1.06-1.25 ms (medians of four runs), against 1.18-1.50 ms reading one row at a time.
template <class T> inline T hsum(const T* lanes, i64 n) {
  T acc = 0;
  for (i64 k = 0; k < n; ++k) acc += lanes[k];
  return acc;
}
// the dot products of rows w_0..w_{K-1} (each n values) with x, one vector accumulator per row
template <class T, int K> inline void dot_rows(T* out, const T* const* w, const T* x, i64 n) {
  typedef T V __attribute__((vector_size(32)));
  constexpr i64 L = 32 / sizeof(T);
  V a[K] = {};
  i64 i = 0;
  for (; i + L <= n; i += L) {
    V vx;
    std::memcpy(&vx, x + i, sizeof(V));
    for (int q = 0; q < K; ++q) {
      V vw;
      std::memcpy(&vw, w[q] + i, sizeof(V));
      a[q] += vw * vx;
    }
  }
  for (int q = 0; q < K; ++q) {
    T acc = hsum((const T*)&a[q], L);
    for (i64 k = i; k < n; ++k) acc += w[q][k] * x[k];
    out[q] = acc;
  }
}
template <class T> void mat_vec(T* y, const T* w, const T* x, i64 rows, i64 n) {
  const i64 quarter = rows / 4;
  for (i64 r = 0; r < quarter; ++r) {
    const T* row[4] = {w + r * n, w + (r + quarter) * n, w + (r + 2 * quarter) * n, w + (r + 3 * quarter) * n};
    T out[4];
    dot_rows<T, 4>(out, row, x, n);
    for (int q = 0; q < 4; ++q) y[r + q * quarter] = out[q];
  }
  for (i64 r = 4 * quarter; r < rows; ++r) {  // the last rows % 4 rows, one at a time
    const T* row[1] = {w + r * n};
    dot_rows<T, 1>(y + r, row, x, n);
  }
}
template <class T> void excite(T* s, const T* z, const T* w1, const T* b1, const T* w2, const T* b2, int gate, i64 c, i64 h,
                               T* hidden) {
  mat_vec(hidden, w1, z, h, c);
  for (i64 j = 0; j < h; ++j) hidden[j] = relu(hidden[j] + (b1 ? b1[j] : T(0)));
  mat_vec(s, w2, hidden, c, h);
  if (b2) for (i64 k = 0; k < c; ++k) s[k] += b2[k];
  gate_row(gate, s, c);
}
// z = mean_hw of one image (c x hw values at `ub`) in either layout
template <class T> void image_means_nchw(T* z, const T* ub, i64 c, i64 hw, int threads) {
  const T inv = T(1) / T(hw);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 k = 0; k < c; ++k) z[k] = row_sum(ub + k * hw, hw) * inv;
}
template <class T> void image_means_nhwc(T* z, const T* ub, i64 c, i64 hw, int) {
  const T inv = T(1) / T(hw);
  for (i64 k = 0; k < c; ++k) z[k] = T(0);
  for (i64 p = 0; p < hw; ++p) {
    const T* row = ub + p * c;
#pragma omp simd
    for (i64 k = 0; k < c; ++k) z[k] += row[k];
  }
  for (i64 k = 0; k < c; ++k) z[k] *= inv;
}
template <class T, bool NHWC>
void se_block(T* out, T* s_out, const T* u, const T* id, const T* w1, const T* b1, const T* w2, const T* b2, int gate, i64 n,
              i64 c, i64 h, i64 hw, int threads) {
  std::vector<T> z(c), hidden(h), own_s(s_out ? 0 : c);
  for (i64 b = 0; b < n; ++b) {
    const i64 off = b * c * hw;  // one image is c * hw contiguous values in either layout
    const T* ub = u + off;
    T* s = s_out ? s_out + b * c : own_s.data();
    if (NHWC) image_means_nhwc(z.data(), ub, c, hw, threads);
    else image_means_nchw(z.data(), ub, c, hw, threads);
    excite(s, z.data(), w1, b1, w2, b2, gate, c, h, hidden.data());
    if (NHWC && id) sar_nhwc(out + off, ub, s, id + off, 1, hw, c, threads);
    else if (NHWC) ss_nhwc(out + off, ub, s, (const T*)nullptr, 1, hw, c, threads);
    else if (id) sar_nchw(out + off, ub, s, id + off, c, hw, threads);
    else ss_nchw(out + off, ub, s, (const T*)nullptr, c, hw, threads);
  }
}

}  // namespace

#define SECLI_EXPORT(T, SUF)                                                                                   \
  extern "C" void secli_sar_nchw_##SUF(T* o, const T* u, const T* s, const T* id, i64 r, i64 hw, int t) {      \
    sar_nchw(o, u, s, id, r, hw, t);                                                                           \
  }                                                                                                            \
  extern "C" void secli_sar_nhwc_##SUF(T* o, const T* u, const T* s, const T* id, i64 n, i64 hw, i64 c, int t) { \
    sar_nhwc(o, u, s, id, n, hw, c, t);                                                                        \
  }                                                                                                            \
  extern "C" void secli_ss_nchw_##SUF(T* o, const T* x, const T* s, const T* b, i64 r, i64 hw, int t) {        \
    ss_nchw(o, x, s, b, r, hw, t);                                                                             \
  }                                                                                                            \
  extern "C" void secli_ss_nhwc_##SUF(T* o, const T* x, const T* s, const T* b, i64 n, i64 hw, i64 c, int t) { \
    ss_nhwc(o, x, s, b, n, hw, c, t);                                                                          \
  }                                                                                                            \
  extern "C" void secli_dot_nchw_##SUF(T* gm, T* ds, const T* g, const T* o, const T* x, i64 r, i64 hw, int t) { \
    dot_nchw(gm, ds, g, o, x, r, hw, t);                                                                       \
  }                                                                                                            \
  extern "C" void secli_se_nchw_##SUF(T* o, T* s, const T* u, const T* id, const T* w1, const T* b1, const T* w2,     \
                                     const T* b2, int g, i64 n, i64 c, i64 h, i64 hw, int t) {                 \
    se_block<T, false>(o, s, u, id, w1, b1, w2, b2, g, n, c, h, hw, t);                                                   \
  }                                                                                                            \
  extern "C" void secli_se_nhwc_##SUF(T* o, T* s, const T* u, const T* id, const T* w1, const T* b1, const T* w2,     \
                                     const T* b2, int g, i64 n, i64 c, i64 h, i64 hw, int t) {                 \
    se_block<T, true>(o, s, u, id, w1, b1, w2, b2, g, n, c, h, hw, t);                                                   \
  }                                                                                                            \
  extern "C" void secli_dot_nhwc_##SUF(T* gm, T* ds, const T* g, const T* o, const T* x, i64 n, i64 hw, i64 c,  \
                                       int t) {                                                                \
    dot_nhwc(gm, ds, g, o, x, n, hw, c, t);                                                                    \
  }

SECLI_EXPORT(float, f32)
SECLI_EXPORT(double, f64)

// the ABI version cpu_kernels.py checks before it trusts a loaded library
extern "C" int secli_kernels_abi(void) { return 3; }
