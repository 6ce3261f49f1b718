// secli's CPU kernels for the fused SE blocks (see cpu_kernels.py, which compiles and loads this).
//
// Every kernel works on (N, C, HW) tensors in one of two layouts: NCHW (a row of HW values per
// (n, c)) or channels_last (a row of C values per (n, hw)); `s`, `shift` and `ds` are (N, C)
// per-channel values. Each kernel is one pass: it reads its inputs once and writes its outputs
// once. The arithmetic is written as the eager composition does it (a product, then a sum, no
// fused multiply-add: the file is compiled with -ffp-contract=off), so forward results are
// bit-identical to `relu(u * s + identity)`. Threads: OpenMP, with the count torch uses (the
// caller passes torch.get_num_threads()); torch's own libgomp is the one loaded.
#include <cstdint>
#include <vector>

typedef int64_t i64;

namespace {

template <class T> inline T relu(T v) { return v < T(0) ? T(0) : v; }  // NaN passes, as torch.relu
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

// out = x * s + shift
template <class T> void ss_nchw(T* out, const T* x, const T* s, const T* shift, i64 rows, i64 hw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 r = 0; r < rows; ++r) {
    const T sv = s[r], bv = shift[r];
    const T* xr = x + r * hw; T* o = out + r * hw;
#pragma omp simd
    for (i64 i = 0; i < hw; ++i) { T p = xr[i] * sv; o[i] = p + bv; }
  }
}
template <class T> void ss_nhwc(T* out, const T* x, const T* s, const T* shift, i64 n, i64 hw, i64 c, int threads) {
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
  for (i64 b = 0; b < n; ++b)
    for (i64 p = 0; p < hw; ++p) {
      const i64 off = (b * hw + p) * c; const T* sr = s + b * c; const T* br = shift + b * c;
#pragma omp simd
      for (i64 k = 0; k < c; ++k) { T q = x[off + k] * sr[k]; out[off + k] = q + br[k]; }
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
  extern "C" void secli_dot_nhwc_##SUF(T* gm, T* ds, const T* g, const T* o, const T* x, i64 n, i64 hw, i64 c,  \
                                       int t) {                                                                \
    dot_nhwc(gm, ds, g, o, x, n, hw, c, t);                                                                    \
  }

SECLI_EXPORT(float, f32)
SECLI_EXPORT(double, f64)

// the ABI version cpu_kernels.py checks before it trusts a loaded library
extern "C" int secli_kernels_abi(void) { return 1; }
