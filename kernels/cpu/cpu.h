// The CPU backend's ops (fp32; act tensors are float). backend_cpu.c puts them in the lcc_backend table;
// backend.h states each op's semantics, this header only names the implementations.
//
// Determinism: every op gives bit-identical results for any thread count. Row-parallel loops are naturally
// so; every sum across rows runs in an order fixed by the data's shape, never by the thread split.
#ifndef LCC_CPU_H
#define LCC_CPU_H

#include "backend.h"

#include <math.h>

// Loops over fewer elements than this run on one thread: a parallel region costs a few microseconds,
// more than the work it would split (the tiny test models call many small ops).
#define CPU_PAR_MIN 32768

// ---- inline helpers the compiler can vectorize (libm's expf and sequential sums are scalar) ----

// exp(x) to about 2 ulp: 2^n * e^r with n = round(x / ln2), |r| <= ln2/2, e^r by its degree-7 Taylor
// polynomial. Outside [-87, 88] it returns 0 or +inf (expf itself goes denormal below -87.3 and overflows
// above 88.7); the softmaxes and sigmoids that use it do not notice.
static inline float cpu_expf(float x) {
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f;   // round to nearest: 1.5 * 2^23 trick
  float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;     // ln2 split in two: the first product is exact
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
                   r * (1.0f / 5040)))))));
  union { int32_t i; float f; } two_n = {.i = ((int32_t)n + 127) << 23};
  float y = p * two_n.f;
  return x < -87.0f ? 0.0f : (x > 88.0f ? (float)INFINITY : y);
}

// Largest of x[n] (n >= 1), in 16 independent lanes.
static inline float cpu_max(const float *x, int n) {
  float lane[16];
  for (int k = 0; k < 16; k++) lane[k] = x[0];
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; k++) lane[k] = x[i + k] > lane[k] ? x[i + k] : lane[k];
  }
  float m = x[0];
  for (int k = 0; k < 16; k++) m = lane[k] > m ? lane[k] : m;
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// Sum of x[n] in double, in 8 interleaved lanes added up in a fixed order: vectorizes, and the order
// depends on n only.
static inline double cpu_sum(const float *x, int n) {
  double lane[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; k++) lane[k] += x[i + k];
  }
  double s = 0.0;
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; i < n; i++) s += x[i];
  return s;
}

// linear.c
// C[M,N] = alpha op(A) op(B) + beta C, row-major, as cblas_sgemm; trans_a, trans_b: 0 or 1. The threads
// split C into tiles whose shape depends only on M and N; each tile is one single-threaded OpenBLAS call.
// OpenBLAS's own threading must never run: its kernels round a row differently depending on where the
// partition puts it, so results would change with the thread count. Its OpenMP build runs single-threaded
// inside a parallel region, so every cblas call in this backend sits in one (with no `if` clause).
// Call cpu_gemm outside parallel regions; inside one, call cblas_sgemm directly.
// (cblas.h stays out of this header: it pulls in complex.h, whose macro I breaks the SwiGLU signatures.)
void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void cpu_linear_fwd(lcc_backend *be, void *out, const void *inp, const void *w, const void *bias,
                    int N, int C, int OC);
void cpu_linear_bwd(lcc_backend *be, void *dinp, float *dw, float *dbias, const void *dout,
                    const void *inp, const void *w, int N, int C, int OC);

// norm.c
void cpu_rmsnorm_fwd(lcc_backend *be, void *out, float *rstd, const void *inp, const void *w,
                     int N, int C, float eps);
void cpu_rmsnorm_bwd(lcc_backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                     const void *w, const float *rstd, int N, int C);
void cpu_layernorm_fwd(lcc_backend *be, void *out, float *mean, float *rstd, const void *inp,
                       const void *w, const void *b, int N, int C, float eps);
void cpu_layernorm_bwd(lcc_backend *be, void *dinp, float *dw, float *db, const void *dout,
                       const void *inp, const void *w, const float *mean, const float *rstd, int N, int C);

// elementwise.c
void cpu_add(lcc_backend *be, void *out, const void *a, const void *b, size_t n);
void cpu_swiglu_fwd(lcc_backend *be, void *out, const void *gu, int N, int I);
void cpu_swiglu_bwd(lcc_backend *be, void *dgu, const void *dout, const void *gu, int N, int I);
void cpu_quick_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n);
void cpu_quick_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);
void cpu_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n);
void cpu_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);

// rope.c
void cpu_rope_fwd(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);
void cpu_rope_bwd(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);

// attention.c
void cpu_attention_fwd(lcc_backend *be, void *out, float *lse, const void *qkv, const int32_t *cu_seqlens,
                       int n_seq, int T, int Hq, int Hkv, int D, int causal);
void cpu_attention_bwd(lcc_backend *be, void *dqkv, const void *dout, const void *qkv, const void *out,
                       const float *lse, const int32_t *cu_seqlens, int n_seq, int T, int Hq, int Hkv,
                       int D, int causal);
void cpu_attention_cached(lcc_backend *be, void *out, const void *q, int ldq, const void *kc, const void *vc, int Tn,
                          int Tc, int Hq, int Hkv, int D);

// embedding.c
void cpu_embedding_fwd(lcc_backend *be, void *out, const int32_t *ids, const void *table, int T, int C);
void cpu_embedding_bwd(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout, int T, int C);
void cpu_scatter_rows_fwd(lcc_backend *be, void *x, const void *feats, const int32_t *rows, int M, int C);
void cpu_scatter_rows_bwd(lcc_backend *be, void *dfeats, void *dx, const int32_t *rows, int M, int C);
void cpu_copy_rows(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols);

// lm_head_ce.c
void cpu_lm_head_ce(lcc_backend *be, float *losses, void *dx, float *dw, const void *x, const void *w,
                    const int32_t *targets, const float *weights, int T, int C, int V);

// optim.c
void cpu_adamw(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v,
               size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
               float grad_scale);
double cpu_sum_squares(lcc_backend *be, const float *x, size_t n);
void cpu_scale(lcc_backend *be, float *x, float s, size_t n);
void cpu_add_f32(lcc_backend *be, float *out, const float *a, size_t n);

#endif
