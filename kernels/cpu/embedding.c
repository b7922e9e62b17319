// Token embedding lookup and its scatter-add gradient; row moves: the vision-feature scatter into pad-token
// rows, its backward, and strided row copies (as cuda/embedding.cu).
#include "cpu.h"

#include <string.h>

// Columns per task of the embedding gradient: each task adds whole rows' slices in token order, so repeated
// ids sum in the same order for any thread count.
#define COL_BLOCK 64

void cpu_embedding_fwd(lcc_backend *be, void *out_, const int32_t *ids, const void *table_, int T, int C) {
  float *out = out_;            // [T, C]
  const float *table = table_;  // [V, C]
  // ids [T]
#pragma omp parallel for schedule(static) if ((size_t)T * C >= CPU_PAR_MIN)
  for (int t = 0; t < T; t++) {
    memcpy(out + (size_t)t * C, table + (size_t)ids[t] * C, (size_t)C * sizeof(float));
  }
}

void cpu_embedding_bwd(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout_, int T, int C) {
  const float *dout = dout_;   // [T, C]
  // dtable [V, C]: accumulated; ids [T]
  int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)T * C >= CPU_PAR_MIN)
  for (int blk = 0; blk < n_blocks; blk++) {
    int c0 = blk * COL_BLOCK, nc = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
    for (int t = 0; t < T; t++) {
      float *dst = dtable + (size_t)ids[t] * C + c0;
      const float *src = dout + (size_t)t * C + c0;
      for (int j = 0; j < nc; j++) dst[j] += src[j];
    }
  }
}

void cpu_scatter_rows_fwd(lcc_backend *be, void *x_, const void *feats_, const int32_t *rows, int M, int C) {
  float *x = x_;                // [T, C]
  const float *feats = feats_;  // [M, C]
  // rows [M]: distinct row indices into x
#pragma omp parallel for schedule(static) if ((size_t)M * C >= CPU_PAR_MIN)
  for (int m = 0; m < M; m++) {
    memcpy(x + (size_t)rows[m] * C, feats + (size_t)m * C, (size_t)C * sizeof(float));
  }
}

void cpu_scatter_rows_bwd(lcc_backend *be, void *dfeats_, void *dx_, const int32_t *rows, int M, int C) {
  float *dfeats = dfeats_;   // [M, C] or NULL
  float *dx = dx_;           // [T, C]: the scattered rows are read, then zeroed
  // rows [M]
#pragma omp parallel for schedule(static) if ((size_t)M * C >= CPU_PAR_MIN)
  for (int m = 0; m < M; m++) {
    float *src = dx + (size_t)rows[m] * C;
    if (dfeats) memcpy(dfeats + (size_t)m * C, src, (size_t)C * sizeof(float));
    memset(src, 0, (size_t)C * sizeof(float));
  }
}

void cpu_copy_rows(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols) {
  // dst [rows, ld_dst] <- src [rows, ld_src], the first cols of each row
  for (int r = 0; r < rows; r++)
    memcpy((float *)dst + (size_t)r * ld_dst, (const float *)src + (size_t)r * ld_src, (size_t)cols * sizeof(float));
}
