// Shared pieces of the CUDA backend (C++ only, included by the kernels/cuda/*.cu files): checked calls,
// the backend's private state, cached scratch memory, 8-wide bf16/fp32 loads and stores, a warp sum, and
// the op functions that backend_cuda.cu puts into the lcc_backend table.
//
// Conventions of every op here:
//   - act tensors are __nv_bfloat16; math is fp32; each output is rounded to bf16 once (RMSNorm, as HF,
//     also rounds the normalized value before the weight multiply);
//   - everything runs on the backend's one stream (cuda_impl.stream), in call order. Besides alloc, free,
//     upload and download, only sum_squares and lm_head_ce (its row count) make the host wait for it;
//   - every reduction has a fixed order that depends only on the shapes: no float atomics anywhere, so
//     results are bit-identical run to run;
//   - vectorized paths (16-byte loads) run only when the pointers are aligned for them; otherwise the same
//     kernel takes a scalar path. Buffers carved from one allocation (model/forward.c, the packed weights)
//     need not be 16-byte aligned.
#ifndef LCC_CUDA_COMMON_H
#define LCC_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern "C" {   // plain C headers without their own guards
#include "backend.h"
#include "util.h"
}
#include "cuda_check.h"

typedef __nv_bfloat16 bf16;

// ---- checked calls (CUDA_CHECK is in cuda_check.h): the call and the library's own message, then exit ----
#define CUBLAS_CHECK(call)                                                                                   \
  do {                                                                                                       \
    cublasStatus_t st_ = (call);                                                                             \
    if (st_ != CUBLAS_STATUS_SUCCESS) lcc_fatal("%s: %s", #call, cublasLtGetStatusString(st_));                \
  } while (0)
// After every kernel launch: a bad launch configuration surfaces here, at its own line.
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

// ---- private state ----

// Scratch buffers, one per use, kept between calls and grown on demand (never shrunk). Ops on one stream
// run one after another, so ops that never call each other share SCRATCH_WORK.
enum {
  SCRATCH_COLSUM,   // column-sum partials (norm weight gradients, bias gradients)
  SCRATCH_BIAS,     // a 16-byte-aligned copy of a misaligned bias for the GEMM epilogue
  SCRATCH_SUMSQ,    // sum_squares partials and result
  SCRATCH_WORK,     // the large working memory of lm_head_ce (logits chunks) and embedding_bwd (partial sums)
  SCRATCH_COUNT
};

struct cuda_gemm_cache;   // linear.cu

typedef struct {
  int device;
  // The one compute stream (created non-blocking): every op, copy and memset of this backend runs on it
  // in call order. Other components (NCCL, overlapping copies) order themselves against it with events.
  cudaStream_t stream;
  cublasLtHandle_t lt;
  struct cuda_gemm_cache *gemm;   // cuBLASLt workspace and cached plans per GEMM shape
  void *scratch[SCRATCH_COUNT];
  size_t scratch_bytes[SCRATCH_COUNT];
  unsigned long long uploads;     // upload calls so far: host copies of device data stay valid until the next
} cuda_impl;

static inline cuda_impl *cuda_of(lcc_backend *be) { return (cuda_impl *)be->impl; }

// Device memory for one scratch use, at least `bytes` (256-byte aligned). Growing waits for the stream
// (earlier work may still read the old buffer) and reallocates; the contents are not kept.
void *cuda_scratch(lcc_backend *be, int slot, size_t bytes);

// Blocks for n work items of `per_block` each, checked against the grid limit.
static inline unsigned cuda_blocks(size_t n, size_t per_block) {
  size_t b = (n + per_block - 1) / per_block;
  LCC_CHECK(b >= 1 && b <= 0x7fffffffu, "grid of %zu blocks is out of range", b);
  return (unsigned)b;
}

static inline int cuda_aligned(const void *p, size_t bytes) { return ((uintptr_t)p % bytes) == 0; }

// Sizes of the pieces carved from one scratch buffer: every piece starts 256-byte aligned.
static inline size_t cuda_round256(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

// ---- device helpers ----

// n (<= 8 used) elements at p into f[8] as fp32, zeros past n. vec: p is 16-byte aligned, so a full group
// is one 16-byte load.
static __device__ __forceinline__ void load8_bf16(const bf16 *p, int n, int vec, float f[8]) {
  if (vec && n >= 8) {
    uint4 u = *(const uint4 *)p;
    const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      float2 v = __bfloat1622float2(h[k]);
      f[2 * k] = v.x;
      f[2 * k + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = k < n ? __bfloat162float(p[k]) : 0.0f;
  }
}

static __device__ __forceinline__ void store8_bf16(bf16 *p, int n, int vec, const float f[8]) {
  if (vec && n >= 8) {
    uint4 u;
    __nv_bfloat162 *h = (__nv_bfloat162 *)&u;
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
    *(uint4 *)p = u;
  } else {
#pragma unroll
    for (int k = 0; k < 8; k++)
      if (k < n) p[k] = __float2bfloat16_rn(f[k]);
  }
}

// fp32 versions: vec means p is 16-byte aligned (two float4 per group).
static __device__ __forceinline__ void load8_f32(const float *p, int n, int vec, float f[8]) {
  if (vec && n >= 8) {
    float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
  } else {
#pragma unroll
    for (int k = 0; k < 8; k++) f[k] = k < n ? p[k] : 0.0f;
  }
}

static __device__ __forceinline__ void store8_f32(float *p, int n, int vec, const float f[8]) {
  if (vec && n >= 8) {
    *(float4 *)p = make_float4(f[0], f[1], f[2], f[3]);
    *(float4 *)(p + 4) = make_float4(f[4], f[5], f[6], f[7]);
  } else {
#pragma unroll
    for (int k = 0; k < 8; k++)
      if (k < n) p[k] = f[k];
  }
}

static __device__ __forceinline__ int min_i(int a, int b) { return a < b ? a : b; }

// Butterfly sum: every lane ends with the same, bit-identical value (a + b == b + a at each level).
static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- ops (one file each; backend.h states their semantics) ----

// linear.cu. Row-major D[M,N] = op(A)[M,K] @ op(B)[K,N] (+ bias[N]) + beta * D, A and B bf16, fp32
// accumulation; D is bf16 (d_f32 = 0) or fp32 (d_f32 = 1). Leading dimensions in elements, as stored.
void cuda_gemm(lcc_backend *be, int trans_a, int trans_b, int M, int N, int K, const bf16 *A, int lda,
               const bf16 *B, int ldb, const bf16 *bias, float beta, void *D, int d_f32, int ldd);
void cuda_gemm_init(lcc_backend *be);
void cuda_gemm_destroy(lcc_backend *be);
void cuda_linear_fwd(lcc_backend *be, void *out, const void *inp, const void *w, const void *bias, int N, int C,
                     int OC);
void cuda_linear_bwd(lcc_backend *be, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                     const void *w, int N, int C, int OC);

// norm.cu. Column sums over rows, deterministic (fixed row chunks, then the chunks in order):
//   COLSUM_PLAIN: dst[c] += sum_n a[n,c]                                  (bias gradients)
//   COLSUM_RMS:   dst[c] += sum_n a[n,c] * bf16(b[n,c] * rstd[n])          (RMSNorm weight gradient)
//   COLSUM_LN:    dst[c] += sum_n a[n,c] * (b[n,c] - mean[n]) * rstd[n],  dst2[c] += sum_n a[n,c]
// dst or dst2 may be NULL (skipped).
enum { COLSUM_PLAIN, COLSUM_RMS, COLSUM_LN };
void cuda_colsum(lcc_backend *be, int mode, float *dst, float *dst2, const bf16 *a, const bf16 *b, const float *mean,
                 const float *rstd, int N, int C);
void cuda_rmsnorm_fwd(lcc_backend *be, void *out, float *rstd, const void *inp, const void *w, int N, int C, float eps);
void cuda_rmsnorm_bwd(lcc_backend *be, void *dinp, float *dw, const void *dout, const void *inp, const void *w,
                      const float *rstd, int N, int C);
void cuda_layernorm_fwd(lcc_backend *be, void *out, float *mean, float *rstd, const void *inp, const void *w,
                        const void *b, int N, int C, float eps);
void cuda_layernorm_bwd(lcc_backend *be, void *dinp, float *dw, float *db, const void *dout, const void *inp,
                        const void *w, const float *mean, const float *rstd, int N, int C);

// elementwise.cu (also the casts)
void cuda_to_act(lcc_backend *be, void *out, const float *inp, size_t n);
void cuda_from_act(lcc_backend *be, float *out, const void *inp, size_t n);
void cuda_add(lcc_backend *be, void *out, const void *a, const void *b, size_t n);
void cuda_swiglu_fwd(lcc_backend *be, void *out, const void *gu, int N, int I);
void cuda_swiglu_bwd(lcc_backend *be, void *dgu, const void *dout, const void *gu, int N, int I);
void cuda_quick_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n);
void cuda_quick_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);
void cuda_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n);
void cuda_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n);

// rope.cu
void cuda_rope_fwd(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);
void cuda_rope_bwd(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D);

// embedding.cu
void cuda_embedding_fwd(lcc_backend *be, void *out, const int32_t *ids, const void *table, int T, int C);
void cuda_embedding_bwd(lcc_backend *be, float *dtable, const int32_t *ids, const void *dout, int T, int C);
void cuda_scatter_rows_fwd(lcc_backend *be, void *x, const void *feats, const int32_t *rows, int M, int C);
void cuda_scatter_rows_bwd(lcc_backend *be, void *dfeats, void *dx, const int32_t *rows, int M, int C);
void cuda_copy_rows(lcc_backend *be, void *dst, int ld_dst, const void *src, int ld_src, int rows, int cols);

// lm_head_ce.cu
void cuda_lm_head_ce(lcc_backend *be, float *losses, void *dx, float *dw, const void *x, const void *w,
                     const int32_t *targets, const float *weights, int T, int C, int V);

// optim.cu
void cuda_adamw(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v, size_t n,
                float lr, float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale);
double cuda_sum_squares(lcc_backend *be, const float *x, size_t n);
void cuda_scale(lcc_backend *be, float *x, float s, size_t n);
void cuda_add_f32(lcc_backend *be, float *out, const float *a, size_t n);

#endif
