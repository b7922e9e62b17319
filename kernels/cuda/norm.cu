// RMSNorm (decoder) and LayerNorm (vision tower, merger) over the last dim of [N, C] bf16 rows, and the
// deterministic column sums their weight gradients (and the linear layers' bias gradients) use.
//
// Row kernels: one warp per row, 8 bf16 (16 bytes) per lane per step, row statistics in fp32 registers and
// warp butterflies. The row is read again for each pass (it stays in L1/L2: C <= a few thousand).
// Numerics as HF in bf16: RMSNorm normalizes in fp32 and rounds x * rstd to bf16 before the weight
// multiply; LayerNorm computes (x - mean) * rstd * w + b in fp32 and rounds once.
//
// Column sums: stage 1 gives each block 64 columns and COLSUM_ROWS rows (8 warps, each warp every 8th row,
// then the 8 warp sums in warp order); stage 2 adds the chunks' partials in chunk order. No atomics: the
// order depends only on N and C.
#include "cuda_common.h"

#define ROW_WARPS 8        // rows (warps) per block of the row kernels
#define COLSUM_ROWS 256    // rows per partial sum
#define COLSUM_WARPS 8
#define COLSUM_COLS 64     // columns per block: 32 lanes x 2

static __device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// ---- RMSNorm ----

static __global__ void rmsnorm_fwd_kernel(bf16 *out, float *rstd, const bf16 *inp, const bf16 *w, int N, int C,
                                          float eps, int vec) {
  // out, inp [N, C]; w [C]; rstd [N]
  const int row = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;   // whole warps leave together
  const bf16 *x = inp + (size_t)row * C;
  bf16 *y = out + (size_t)row * C;
  float ss = 0.0f;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float f[8];
    load8_bf16(x + i, C - i, vec, f);
#pragma unroll
    for (int k = 0; k < 8; k++) ss += f[k] * f[k];
  }
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / (float)C + eps);
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float f[8], g[8];
    load8_bf16(x + i, C - i, vec, f);
    load8_bf16(w + i, C - i, vec, g);
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = g[k] * round_bf16(f[k] * r);
    store8_bf16(y + i, C - i, vec, f);
  }
  if (lane == 0) rstd[row] = r;
}

static __global__ void rmsnorm_bwd_kernel(bf16 *dinp, const bf16 *dout, const bf16 *inp, const bf16 *w,
                                          const float *rstd, int N, int C, int vec) {
  // dinp (+=), dout, inp [N, C]; w [C]; rstd [N]. With g = dout * w: dx = rstd * (g - x * rstd^2 * mean(g * x)).
  const int row = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const size_t off = (size_t)row * C;
  const float r = rstd[row];
  float gx = 0.0f;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float x[8], dy[8], g[8];
    load8_bf16(inp + off + i, C - i, vec, x);
    load8_bf16(dout + off + i, C - i, vec, dy);
    load8_bf16(w + i, C - i, vec, g);
#pragma unroll
    for (int k = 0; k < 8; k++) gx += dy[k] * g[k] * x[k];
  }
  gx = warp_sum(gx);
  const float c = gx / (float)C * r * r;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float x[8], dy[8], g[8], dx[8];
    load8_bf16(inp + off + i, C - i, vec, x);
    load8_bf16(dout + off + i, C - i, vec, dy);
    load8_bf16(w + i, C - i, vec, g);
    load8_bf16(dinp + off + i, C - i, vec, dx);
#pragma unroll
    for (int k = 0; k < 8; k++) dx[k] += r * (dy[k] * g[k] - x[k] * c);
    store8_bf16(dinp + off + i, C - i, vec, dx);
  }
}

// ---- LayerNorm ----

static __global__ void layernorm_fwd_kernel(bf16 *out, float *mean, float *rstd, const bf16 *inp, const bf16 *w,
                                            const bf16 *b, int N, int C, float eps, int vec) {
  // out, inp [N, C]; w, b [C]; mean, rstd [N]
  const int row = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const bf16 *x = inp + (size_t)row * C;
  bf16 *y = out + (size_t)row * C;
  float s = 0.0f;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float f[8];
    load8_bf16(x + i, C - i, vec, f);
#pragma unroll
    for (int k = 0; k < 8; k++) s += f[k];
  }
  const float m = warp_sum(s) / (float)C;
  float ss = 0.0f;   // second pass: the biased variance without cancellation
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float f[8];
    load8_bf16(x + i, C - i, vec, f);
#pragma unroll
    for (int k = 0; k < 8; k++)
      if (i + k < C) ss += (f[k] - m) * (f[k] - m);   // padding zeros would add m^2
  }
  const float r = 1.0f / sqrtf(warp_sum(ss) / (float)C + eps);
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float f[8], g[8], h[8];
    load8_bf16(x + i, C - i, vec, f);
    load8_bf16(w + i, C - i, vec, g);
    load8_bf16(b + i, C - i, vec, h);
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = (f[k] - m) * r * g[k] + h[k];
    store8_bf16(y + i, C - i, vec, f);
  }
  if (lane == 0) mean[row] = m, rstd[row] = r;
}

static __global__ void layernorm_bwd_kernel(bf16 *dinp, const bf16 *dout, const bf16 *inp, const bf16 *w,
                                            const float *mean, const float *rstd, int N, int C, int vec) {
  // dinp (+=), dout, inp [N, C]; w [C]; mean, rstd [N].
  // With xhat = (x - mean) * rstd, g = dout * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
  const int row = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const size_t off = (size_t)row * C;
  const float m = mean[row], r = rstd[row];
  float sg = 0.0f, sgx = 0.0f;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float x[8], dy[8], g[8];
    load8_bf16(inp + off + i, C - i, vec, x);
    load8_bf16(dout + off + i, C - i, vec, dy);
    load8_bf16(w + i, C - i, vec, g);
#pragma unroll
    for (int k = 0; k < 8; k++) {   // padding: dy = 0, so g = 0 adds nothing
      float gk = dy[k] * g[k];
      sg += gk;
      sgx += gk * ((x[k] - m) * r);
    }
  }
  const float mg = warp_sum(sg) / (float)C, mgx = warp_sum(sgx) / (float)C;
  for (int i = lane * 8; i < C; i += 32 * 8) {
    float x[8], dy[8], g[8], dx[8];
    load8_bf16(inp + off + i, C - i, vec, x);
    load8_bf16(dout + off + i, C - i, vec, dy);
    load8_bf16(w + i, C - i, vec, g);
    load8_bf16(dinp + off + i, C - i, vec, dx);
#pragma unroll
    for (int k = 0; k < 8; k++) dx[k] += r * (dy[k] * g[k] - mg - (x[k] - m) * r * mgx);
    store8_bf16(dinp + off + i, C - i, vec, dx);
  }
}

// ---- column sums ----

// Two adjacent elements p[0], p[1] (only p[0] when n == 1) as fp32. pair: p is 4-byte aligned.
static __device__ __forceinline__ void load2_bf16(const bf16 *p, int n, int pair, float *f0, float *f1) {
  if (pair && n >= 2) {
    float2 v = __bfloat1622float2(*(const __nv_bfloat162 *)p);
    *f0 = v.x, *f1 = v.y;
  } else {
    *f0 = __bfloat162float(p[0]);
    *f1 = n >= 2 ? __bfloat162float(p[1]) : 0.0f;
  }
}

static __global__ void colsum_partial_kernel(float *part, float *part2, int mode, const bf16 *a, const bf16 *b,
                                             const float *mean, const float *rstd, int N, int C, int pair) {
  // grid (ceil(C / 64), ceil(N / COLSUM_ROWS)), block 256. part, part2 [n_chunks, C]: this chunk's sums.
  __shared__ float acc[COLSUM_WARPS][COLSUM_COLS], acc2[COLSUM_WARPS][COLSUM_COLS];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int c = blockIdx.x * COLSUM_COLS + lane * 2;
  const int n0 = blockIdx.y * COLSUM_ROWS, n1 = min_i(n0 + COLSUM_ROWS, N);
  float s0 = 0.0f, s1 = 0.0f, t0 = 0.0f, t1 = 0.0f;
  if (c < C) {
    for (int n = n0 + warp; n < n1; n += COLSUM_WARPS) {
      const size_t off = (size_t)n * C + c;
      float a0, a1;
      load2_bf16(a + off, C - c, pair, &a0, &a1);
      if (mode == COLSUM_PLAIN) {
        s0 += a0, s1 += a1;
      } else {
        float b0, b1;
        load2_bf16(b + off, C - c, pair, &b0, &b1);
        const float r = rstd[n];
        if (mode == COLSUM_RMS) {   // the forward multiplied w by bf16(x * rstd)
          s0 += a0 * round_bf16(b0 * r), s1 += a1 * round_bf16(b1 * r);
        } else {
          const float m = mean[n];
          s0 += a0 * ((b0 - m) * r), s1 += a1 * ((b1 - m) * r);
          t0 += a0, t1 += a1;
        }
      }
    }
  }
  acc[warp][lane * 2] = s0, acc[warp][lane * 2 + 1] = s1;
  acc2[warp][lane * 2] = t0, acc2[warp][lane * 2 + 1] = t1;
  __syncthreads();
  const int j = threadIdx.x, cj = blockIdx.x * COLSUM_COLS + j;
  if (j < COLSUM_COLS && cj < C) {
    float s = 0.0f, t = 0.0f;
    for (int k = 0; k < COLSUM_WARPS; k++) s += acc[k][j], t += acc2[k][j];
    part[(size_t)blockIdx.y * C + cj] = s;
    if (part2) part2[(size_t)blockIdx.y * C + cj] = t;
  }
}

static __global__ void colsum_final_kernel(float *dst, float *dst2, const float *part, const float *part2, int n_chunks,
                                           int C) {
  // dst, dst2 [C] (+=, either may be NULL); part, part2 [n_chunks, C], added in chunk order
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.0f, t = 0.0f;
  for (int k = 0; k < n_chunks; k++) {
    s += part[(size_t)k * C + c];
    if (dst2) t += part2[(size_t)k * C + c];
  }
  if (dst) dst[c] += s;
  if (dst2) dst2[c] += t;
}

void cuda_colsum(lcc_backend *be, int mode, float *dst, float *dst2, const bf16 *a, const bf16 *b, const float *mean,
                 const float *rstd, int N, int C) {
  if (N == 0 || C == 0 || (!dst && !dst2)) return;
  cudaStream_t s = cuda_of(be)->stream;
  const int n_chunks = (N + COLSUM_ROWS - 1) / COLSUM_ROWS;
  LCC_CHECK(n_chunks <= 65535, "column sum over %d rows: too many row chunks for the grid", N);
  const int two = mode == COLSUM_LN;
  float *part = (float *)cuda_scratch(be, SCRATCH_COLSUM, (size_t)(two ? 2 : 1) * n_chunks * C * sizeof(float));
  float *part2 = two ? part + (size_t)n_chunks * C : NULL;
  const int pair = cuda_aligned(a, 4) && (!b || cuda_aligned(b, 4)) && C % 2 == 0;
  dim3 grid(cuda_blocks((size_t)C, COLSUM_COLS), (unsigned)n_chunks);
  colsum_partial_kernel<<<grid, COLSUM_WARPS * 32, 0, s>>>(part, part2, mode, a, b, mean, rstd, N, C, pair);
  CUDA_LAUNCH_CHECK();
  colsum_final_kernel<<<cuda_blocks((size_t)C, 256), 256, 0, s>>>(dst, two ? dst2 : NULL, part, part2, n_chunks, C);
  CUDA_LAUNCH_CHECK();
}

// ---- the backend's entry points ----

// 16-byte loads need every row start aligned: the base pointers aligned and C a multiple of 8.
static int rows_vec(int C, const void *p0, const void *p1, const void *p2, const void *p3) {
  return C % 8 == 0 && cuda_aligned(p0, 16) && (!p1 || cuda_aligned(p1, 16)) && (!p2 || cuda_aligned(p2, 16)) &&
         (!p3 || cuda_aligned(p3, 16));
}

void cuda_rmsnorm_fwd(lcc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N, int C,
                      float eps) {
  if (N == 0) return;
  const int vec = rows_vec(C, out, inp, w, NULL);
  rmsnorm_fwd_kernel<<<cuda_blocks((size_t)N, ROW_WARPS), ROW_WARPS * 32, 0, cuda_of(be)->stream>>>(
      (bf16 *)out, rstd, (const bf16 *)inp, (const bf16 *)w, N, C, eps, vec);
  CUDA_LAUNCH_CHECK();
}

void cuda_rmsnorm_bwd(lcc_backend *be, void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                      const float *rstd, int N, int C) {
  if (N == 0) return;
  const int vec = rows_vec(C, dinp, dout, inp, w);
  rmsnorm_bwd_kernel<<<cuda_blocks((size_t)N, ROW_WARPS), ROW_WARPS * 32, 0, cuda_of(be)->stream>>>(
      (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)inp, (const bf16 *)w, rstd, N, C, vec);
  CUDA_LAUNCH_CHECK();
  if (dw) cuda_colsum(be, COLSUM_RMS, dw, NULL, (const bf16 *)dout, (const bf16 *)inp, NULL, rstd, N, C);
}

void cuda_layernorm_fwd(lcc_backend *be, void *out, float *mean, float *rstd, const void *inp, const void *w,
                        const void *b, int N, int C, float eps) {
  if (N == 0) return;
  const int vec = rows_vec(C, out, inp, w, b);
  layernorm_fwd_kernel<<<cuda_blocks((size_t)N, ROW_WARPS), ROW_WARPS * 32, 0, cuda_of(be)->stream>>>(
      (bf16 *)out, mean, rstd, (const bf16 *)inp, (const bf16 *)w, (const bf16 *)b, N, C, eps, vec);
  CUDA_LAUNCH_CHECK();
}

void cuda_layernorm_bwd(lcc_backend *be, void *dinp, float *dw, float *db, const void *dout, const void *inp,
                        const void *w, const float *mean, const float *rstd, int N, int C) {
  if (N == 0) return;
  const int vec = rows_vec(C, dinp, dout, inp, w);
  layernorm_bwd_kernel<<<cuda_blocks((size_t)N, ROW_WARPS), ROW_WARPS * 32, 0, cuda_of(be)->stream>>>(
      (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)inp, (const bf16 *)w, mean, rstd, N, C, vec);
  CUDA_LAUNCH_CHECK();
  if (dw || db) cuda_colsum(be, COLSUM_LN, dw, db, (const bf16 *)dout, (const bf16 *)inp, mean, rstd, N, C);
}
