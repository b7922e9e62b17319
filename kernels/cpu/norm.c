// RMSNorm (Qwen2 decoder) and LayerNorm (vision tower, merger) over the last dim of [N, C] rows.
// Row statistics are summed in double, so their fp32 values stay accurate for any C; the weight gradients
// sum over rows per column block, in row order, also in double.
#include "cpu.h"

#include <math.h>

// Columns per block of the weight-gradient sums (one task each; the sum order inside is the row order).
#define COL_BLOCK 64

void cpu_rmsnorm_fwd(lcc_backend *be, void *out_, float *rstd, const void *inp_, const void *w_,
                     int N, int C, float eps) {
  float *out = out_;         // [N, C]
  const float *inp = inp_;   // [N, C]
  const float *w = w_;       // [C]
  // rstd [N]: saved for backward
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    double ss = 0.0;
    for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / C) + eps);
    for (int i = 0; i < C; i++) y[i] = w[i] * (x[i] * r);   // HF: normalize, then scale by the weight
    rstd[n] = r;
  }
}

// dw[C] += sum over rows of dout * x * rstd.
static void rmsnorm_dw(float *dw, const float *dout, const float *inp, const float *rstd, int N, int C) {
  int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int blk = 0; blk < n_blocks; blk++) {
    int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    double acc[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
      const float *dy = dout + (size_t)n * C + c0, *x = inp + (size_t)n * C + c0;
      for (int j = 0; j < nc; j++) acc[j] += dy[j] * (x[j] * rstd[n]);
    }
    for (int j = 0; j < nc; j++) dw[c0 + j] += (float)acc[j];
  }
}

void cpu_rmsnorm_bwd(lcc_backend *be, void *dinp_, float *dw, const void *dout_, const void *inp_,
                     const void *w_, const float *rstd, int N, int C) {
  float *dinp = dinp_;         // [N, C], accumulated (the residual-stream gradient)
  const float *dout = dout_;   // [N, C]
  const float *inp = inp_;     // [N, C]
  const float *w = w_;         // [C]
  // dw [C]: accumulated; rstd [N] from forward
  // With g = dout * w: dx = rstd * (g - x * rstd^2 * mean(g * x)).
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C;
    float r = rstd[n];
    double gx = 0.0;
    for (int i = 0; i < C; i++) gx += (double)(dy[i] * w[i]) * x[i];
    float c = (float)(gx / C) * r * r;
    for (int i = 0; i < C; i++) dx[i] += r * (dy[i] * w[i] - x[i] * c);
  }
  if (dw) rmsnorm_dw(dw, dout, inp, rstd, N, C);   // frozen weight: NULL
}

void cpu_layernorm_fwd(lcc_backend *be, void *out_, float *mean, float *rstd, const void *inp_,
                       const void *w_, const void *b_, int N, int C, float eps) {
  float *out = out_;         // [N, C]
  const float *inp = inp_;   // [N, C]
  const float *w = w_;       // [C]
  const float *b = b_;       // [C]
  // mean [N], rstd [N]: saved for backward
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float *y = out + (size_t)n * C;
    double s = 0.0;
    for (int i = 0; i < C; i++) s += x[i];
    double mu = s / C, ss = 0.0;   // two passes: the biased variance without cancellation
    for (int i = 0; i < C; i++) ss += (x[i] - mu) * (x[i] - mu);
    float m = (float)mu, r = 1.0f / sqrtf((float)(ss / C) + eps);
    for (int i = 0; i < C; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
    mean[n] = m;
    rstd[n] = r;
  }
}

// dw[C] += sum over rows of dout * xhat; db[C] += sum over rows of dout (either may be NULL).
static void layernorm_dwdb(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                           const float *rstd, int N, int C) {
  int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int blk = 0; blk < n_blocks; blk++) {
    int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    double accw[COL_BLOCK] = {0}, accb[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
      const float *dy = dout + (size_t)n * C + c0, *x = inp + (size_t)n * C + c0;
      for (int j = 0; j < nc; j++) {
        accw[j] += dy[j] * ((x[j] - mean[n]) * rstd[n]);
        accb[j] += dy[j];
      }
    }
    for (int j = 0; j < nc; j++) {
      if (dw) dw[c0 + j] += (float)accw[j];
      if (db) db[c0 + j] += (float)accb[j];
    }
  }
}

void cpu_layernorm_bwd(lcc_backend *be, void *dinp_, float *dw, float *db, const void *dout_,
                       const void *inp_, const void *w_, const float *mean, const float *rstd, int N, int C) {
  float *dinp = dinp_;         // [N, C], accumulated (the residual-stream gradient)
  const float *dout = dout_;   // [N, C]
  const float *inp = inp_;     // [N, C]
  const float *w = w_;         // [C]
  // dw [C], db [C]: accumulated; mean [N], rstd [N] from forward
  // With xhat = (x - mean) * rstd and g = dout * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
#pragma omp parallel for schedule(static) if ((size_t)N * C >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C;
    float m = mean[n], r = rstd[n];
    double sg = 0.0, sgx = 0.0;
    for (int i = 0; i < C; i++) {
      float g = dy[i] * w[i];
      sg += g;
      sgx += (double)g * ((x[i] - m) * r);
    }
    float mg = (float)(sg / C), mgx = (float)(sgx / C);
    for (int i = 0; i < C; i++) dx[i] += r * (dy[i] * w[i] - mg - (x[i] - m) * r * mgx);
  }
  if (dw || db) layernorm_dwdb(dw, db, dout, inp, mean, rstd, N, C);   // frozen weights: NULL
}
