// Fused LM head + cross-entropy, chunked: never holds more than [chunk, V] logits, rows without a target
// cost nothing.
//
// 1. The rows with a target are listed in row order on the device (one block, ballots); the host reads
//    their count (one synchronization per call) and any target outside the vocabulary (fatal, as on CPU).
// 2. Per chunk of listed rows, in order: gather x rows [nc, C]; logits [nc, V] fp32 = xc @ w^T (cuBLASLt,
//    bf16 inputs, fp32 output); one block per row: online max / sum of exp, loss = logsumexp - logit[target],
//    and with gradients dlogits = weight * (softmax - onehot) written as bf16 (the next GEMMs' input type,
//    as HF's bf16 autograd has it); dx rows = dlogits @ w (bf16, scattered back to their rows);
//    dw += dlogits^T @ xc (fp32, beta = 1). Chunks run in order, so dw's sum order is fixed.
// Working memory (the backend's shared work scratch, kept between calls): fp32 logits (at most
// CE_LOGITS_BYTES), bf16 dlogits (half that), two [chunk, C]: about 0.95 GB at V = 152K with gradients.
#include "cuda_common.h"

#include <math.h>

#define CE_CHUNK_MAX 1024                    // rows per chunk
#define CE_LOGITS_BYTES ((size_t)1 << 30)    // cap on the fp32 logits scratch
#define CE_THREADS 512
#define ROWS_THREADS 1024

static __global__ void ce_rows_kernel(int32_t *rows, int32_t *info, const int32_t *targets, int T, int V) {
  // One block. rows [T]: the t with targets[t] >= 0, in order; info[0] = their count, info[1] = the first t
  // whose target is >= V, or -1.
  __shared__ int warp_count[ROWS_THREADS / 32];
  __shared__ int first_bad;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (threadIdx.x == 0) first_bad = T;
  __syncthreads();
  int base = 0;
  for (int t0 = 0; t0 < T; t0 += ROWS_THREADS) {
    const int t = t0 + threadIdx.x;
    const int target = t < T ? targets[t] : -1;
    if (target >= V) atomicMin(&first_bad, t);   // integer minimum: order-independent
    const unsigned mask = __ballot_sync(0xffffffffu, target >= 0);
    if (lane == 0) warp_count[warp] = __popc(mask);
    __syncthreads();
    int before = 0, total = 0;   // listed rows of earlier warps in this tile, and of the whole tile
    for (int k = 0; k < ROWS_THREADS / 32; k++) {
      before += k < warp ? warp_count[k] : 0;
      total += warp_count[k];
    }
    if (target >= 0) rows[base + before + __popc(mask & ((1u << lane) - 1u))] = t;
    base += total;
    __syncthreads();   // warp_count is rewritten by the next tile
  }
  if (threadIdx.x == 0) {
    info[0] = base;
    info[1] = first_bad < T ? first_bad : -1;
  }
}

// (m, s): running max and sum of exp(x - m). s == 0 means empty.
static __device__ __forceinline__ void lse_combine(float *m, float *s, float m2, float s2) {
  const float mx = fmaxf(*m, m2);
  if (mx == -INFINITY) return;   // both empty
  *s = (*s == 0.0f ? 0.0f : *s * expf(*m - mx)) + (s2 == 0.0f ? 0.0f : s2 * expf(m2 - mx));
  *m = mx;
}

static __device__ __forceinline__ void lse_push(float *m, float *s, float x) {
  if (x > *m) {
    *s = *s * expf(*m - x) + 1.0f;   // exp(-inf) = 0 for the first element
    *m = x;
  } else {
    *s += expf(x - *m);
  }
}

static __global__ void ce_kernel(float *losses, bf16 *dlogits, const float *logits, const int32_t *rows,
                                 const int32_t *targets, const float *weights, int V, int want_grad, int vec) {
  // block r: chunk row r = token rows[r]; logits, dlogits [nc, V]. vec: V % 4 == 0 (rows stay 16-byte aligned).
  __shared__ float sm[CE_THREADS / 32], ss[CE_THREADS / 32];
  const size_t r = blockIdx.x;
  const int t = rows[r], target = targets[t];
  const float *l = logits + r * V;
  float m = -INFINITY, s = 0.0f;
  for (int i = threadIdx.x * 4; i < V; i += blockDim.x * 4) {
    if (vec) {
      const float4 x = *(const float4 *)(l + i);
      lse_push(&m, &s, x.x), lse_push(&m, &s, x.y), lse_push(&m, &s, x.z), lse_push(&m, &s, x.w);
    } else {
      for (int k = i; k < i + 4 && k < V; k++) lse_push(&m, &s, l[k]);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {   // butterfly; each warp's lane 0 result is the one used
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    lse_combine(&m, &s, m2, s2);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  if (lane == 0) sm[warp] = m, ss[warp] = s;
  __syncthreads();
  m = sm[0], s = ss[0];
  for (int k = 1; k < n_warps; k++) lse_combine(&m, &s, sm[k], ss[k]);   // same order in every thread
  const float lse = m + logf(s);
  if (threadIdx.x == 0) losses[t] = lse - l[target];
  if (!want_grad) return;
  const float wt = weights[t];
  bf16 *d = dlogits + r * V;
  for (int i = threadIdx.x * 4; i < V; i += blockDim.x * 4) {
    float g[4];
    if (vec) {
      const float4 x = *(const float4 *)(l + i);
      g[0] = x.x, g[1] = x.y, g[2] = x.z, g[3] = x.w;
    } else {
      for (int k = 0; k < 4; k++) g[k] = i + k < V ? l[i + k] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < 4; k++) g[k] = expf(g[k] - lse) * wt - (i + k == target ? wt : 0.0f);
    if (vec) {
      uint2 u;
      *(__nv_bfloat162 *)&u.x = __floats2bfloat162_rn(g[0], g[1]);
      *(__nv_bfloat162 *)&u.y = __floats2bfloat162_rn(g[2], g[3]);
      *(uint2 *)(d + i) = u;
    } else {
      for (int k = 0; k < 4 && i + k < V; k++) d[i + k] = __float2bfloat16_rn(g[k]);
    }
  }
}

void cuda_lm_head_ce(lcc_backend *be, float *losses, void *dx, float *dw, const void *x, const void *w,
                     const int32_t *targets, const float *weights, int T, int C, int V) {
  // losses [T] (out, 0 where ignored); dx [T, C] (overwrite) or NULL; dw [V, C] (+=) or NULL;
  // x [T, C]; w [V, C]; targets [T] (< 0: ignored); weights [T]
  if (T == 0) return;
  cudaStream_t st = cuda_of(be)->stream;
  const int want_grad = dx != NULL || dw != NULL;
  LCC_CHECK(!want_grad || weights, "lm_head_ce: weights are needed for gradients");
  CUDA_CHECK(cudaMemsetAsync(losses, 0, (size_t)T * sizeof(float), st));
  if (dx) CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)T * C * sizeof(bf16), st));

  // Working memory, carved from one scratch buffer: rows [T] + info [2], xc and dxc [chunk, C] bf16,
  // logits [chunk, V] fp32, dlogits [chunk, V] bf16. The chunk depends on V only.
  const size_t fit = CE_LOGITS_BYTES / ((size_t)V * sizeof(float));
  const int chunk = (int)(fit < 1 ? 1 : fit > CE_CHUNK_MAX ? CE_CHUNK_MAX : fit);
  const size_t rows_b = cuda_round256(((size_t)T + 2) * sizeof(int32_t)), xc_b = cuda_round256((size_t)chunk * C * 2);
  const size_t logits_b = cuda_round256((size_t)chunk * V * sizeof(float)), dl_b = cuda_round256((size_t)chunk * V * 2);
  char *work = (char *)cuda_scratch(be, SCRATCH_WORK, rows_b + 2 * xc_b + logits_b + (want_grad ? dl_b : 0));
  int32_t *rows = (int32_t *)work, *info = rows + T, info_h[2];
  bf16 *xc = (bf16 *)(work + rows_b), *dxc = dx ? (bf16 *)(work + rows_b + xc_b) : NULL;
  float *logits = (float *)(work + rows_b + 2 * xc_b);
  bf16 *dlogits = want_grad ? (bf16 *)(work + rows_b + 2 * xc_b + logits_b) : NULL;
  ce_rows_kernel<<<1, ROWS_THREADS, 0, st>>>(rows, info, targets, T, V);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaMemcpyAsync(info_h, info, sizeof info_h, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (info_h[1] >= 0) {
    int32_t bad = 0;
    CUDA_CHECK(cudaMemcpyAsync(&bad, targets + info_h[1], sizeof bad, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    lcc_fatal("lm_head_ce: target %d of row %d outside the vocabulary (%d)", bad, info_h[1], V);
  }
  const int n_rows = info_h[0];
  if (n_rows == 0) return;

  const int vec = V % 4 == 0;
  for (int c0 = 0; c0 < n_rows; c0 += chunk) {
    const int nc = n_rows - c0 < chunk ? n_rows - c0 : chunk;
    cuda_embedding_fwd(be, xc, rows + c0, x, nc, C);   // gather: xc[r] = x[rows[c0 + r]]
    cuda_gemm(be, 0, 1, nc, V, C, xc, C, (const bf16 *)w, C, NULL, 0.0f, logits, 1, V);
    ce_kernel<<<(unsigned)nc, CE_THREADS, 0, st>>>(losses, dlogits, logits, rows + c0, targets, weights, V, want_grad,
                                                   vec);
    CUDA_LAUNCH_CHECK();
    if (dx) {   // dx rows = dlogits @ w
      cuda_gemm(be, 0, 0, nc, C, V, dlogits, V, (const bf16 *)w, C, NULL, 0.0f, dxc, 0, C);
      cuda_scatter_rows_fwd(be, dx, dxc, rows + c0, nc, C);
    }
    if (dw)     // dw += dlogits^T @ xc
      cuda_gemm(be, 1, 0, V, C, nc, dlogits, V, xc, C, NULL, 1.0f, dw, 1, C);
  }
}
