// Linear layers, out = inp @ w^T + bias with PyTorch's row-major [out, in] weights, and the tiled GEMM
// they (and the LM head) run on.
#include "cpu.h"

#include <cblas.h>
#include <string.h>

// Columns per block of the bias-gradient sum: one block per task, each summed over all rows in row order.
#define COL_BLOCK 64

// GEMM tiles: square-ish powers of two from 256 down to 64, halved until there are GEMM_MIN_TILES tasks.
#define GEMM_TILE_MAX 256
#define GEMM_TILE_MIN 64
#define GEMM_MIN_TILES 16

static int tile_count(int M, int N, int tm, int tn) { return ((M + tm - 1) / tm) * ((N + tn - 1) / tn); }

// The smallest power-of-two tile in [GEMM_TILE_MIN, GEMM_TILE_MAX] that covers n, if there is one.
static int first_tile(int n) {
  int t = GEMM_TILE_MAX;
  while (t > GEMM_TILE_MIN && t / 2 >= n) t /= 2;
  return t;
}

void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  // A: [M, K] (or [K, M] when trans_a), B: [K, N] (or [N, K] when trans_b), C: [M, N]; leading dims as stored
  int tm = first_tile(M), tn = first_tile(N);
  while (tile_count(M, N, tm, tn) < GEMM_MIN_TILES) {   // depends on the shape only, never on the threads
    if (tm > GEMM_TILE_MIN && (tm >= tn || tn == GEMM_TILE_MIN)) tm /= 2;
    else if (tn > GEMM_TILE_MIN) tn /= 2;
    else break;
  }
  int mt = (M + tm - 1) / tm, nt = (N + tn - 1) / tn;
#pragma omp parallel for schedule(static)   // even for one tile: keeps OpenBLAS single-threaded
  for (int t = 0; t < mt * nt; t++) {
    int i0 = t / nt * tm, j0 = t % nt * tn;
    int m = M - i0 < tm ? M - i0 : tm, n = N - j0 < tn ? N - j0 : tn;
    const float *a = trans_a ? A + i0 : A + (size_t)i0 * lda;
    const float *b = trans_b ? B + (size_t)j0 * ldb : B + j0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, K,
                alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
  }
}

void cpu_linear_fwd(lcc_backend *be, void *out_, const void *inp_, const void *w_, const void *bias_,
                    int N, int C, int OC) {
  float *out = out_;           // [N, OC]
  const float *inp = inp_;     // [N, C]
  const float *w = w_;         // [OC, C]
  const float *bias = bias_;   // [OC] or NULL
  if (bias) {   // start every row at the bias, then add the product (beta = 1)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
  }
  cpu_gemm(0, 1, N, OC, C, 1.0f, inp, C, w, C, bias ? 1.0f : 0.0f, out, OC);
}

// dbias[OC] += column sums of dout[N, OC], in double: one rounding per element, whatever N is.
static void bias_grad(float *dbias, const float *dout, int N, int OC) {
  int n_blocks = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= CPU_PAR_MIN)
  for (int blk = 0; blk < n_blocks; blk++) {
    int o0 = blk * COL_BLOCK, no = OC - o0 < COL_BLOCK ? OC - o0 : COL_BLOCK;
    double acc[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
      const float *row = dout + (size_t)n * OC + o0;
      for (int j = 0; j < no; j++) acc[j] += row[j];
    }
    for (int j = 0; j < no; j++) dbias[o0 + j] += (float)acc[j];
  }
}

void cpu_linear_bwd(lcc_backend *be, void *dinp_, float *dw, float *dbias, const void *dout_,
                    const void *inp_, const void *w_, int N, int C, int OC) {
  float *dinp = dinp_;         // [N, C] or NULL
  const float *dout = dout_;   // [N, OC]
  const float *inp = inp_;     // [N, C]
  const float *w = w_;         // [OC, C]
  // dw [OC, C], dbias [OC]: accumulated; either may be NULL
  if (dinp) {   // dinp = dout @ w
    cpu_gemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
  }
  if (dw) {   // dw += dout^T @ inp
    cpu_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
  }
  if (dbias) bias_grad(dbias, dout, N, OC);
}
