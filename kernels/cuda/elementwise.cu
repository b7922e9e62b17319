// Elementwise ops: the fp32 <-> bf16 casts, the residual add, SwiGLU (decoder MLP), QuickGELU (vision MLP)
// and exact GELU (merger MLP). Each thread takes 8 consecutive elements: one 16-byte load per bf16 operand
// when the pointers are 16-byte aligned, scalar loads otherwise (and for a short last group). Math in fp32,
// one rounding to bf16 per output.
#include "cuda_common.h"

#define EW_THREADS 256

enum { ACT_QUICK_GELU, ACT_GELU };

// Elements left in the group of 8 that starts at i (n > i).
static __device__ __forceinline__ int left8(size_t n, size_t i) { return n - i >= 8 ? 8 : (int)(n - i); }

static __device__ __forceinline__ size_t group_start(void) {
  return ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 8;
}

static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static __device__ __forceinline__ float act_fwd(int act, float x) {
  if (act == ACT_QUICK_GELU) return x * sigmoid(1.702f * x);
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));   // GELU(x) = x Phi(x)
}

static __device__ __forceinline__ float act_grad(int act, float x) {
  if (act == ACT_QUICK_GELU) {
    const float s = sigmoid(1.702f * x);
    return s + 1.702f * x * s * (1.0f - s);
  }
  const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  const float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
  return cdf + x * pdf;   // GELU'(x) = Phi(x) + x phi(x)
}

// ---- kernels (grid: one thread per group of 8 elements) ----

static __global__ void to_act_kernel(bf16 *out, const float *inp, size_t n, int vec) {
  const size_t i = group_start();
  if (i >= n) return;
  float f[8];
  load8_f32(inp + i, left8(n, i), vec, f);
  store8_bf16(out + i, left8(n, i), vec, f);
}

static __global__ void from_act_kernel(float *out, const bf16 *inp, size_t n, int vec) {
  const size_t i = group_start();
  if (i >= n) return;
  float f[8];
  load8_bf16(inp + i, left8(n, i), vec, f);
  store8_f32(out + i, left8(n, i), vec, f);
}

static __global__ void add_kernel(bf16 *out, const bf16 *a, const bf16 *b, size_t n, int vec) {
  // out [n] = a + b; out may be a or b
  const size_t i = group_start();
  if (i >= n) return;
  const int k_n = left8(n, i);
  float x[8], y[8];
  load8_bf16(a + i, k_n, vec, x);
  load8_bf16(b + i, k_n, vec, y);
#pragma unroll
  for (int k = 0; k < 8; k++) x[k] += y[k];
  store8_bf16(out + i, k_n, vec, x);
}

static __global__ void act_fwd_kernel(bf16 *out, const bf16 *inp, size_t n, int act, int vec) {
  const size_t i = group_start();
  if (i >= n) return;
  const int k_n = left8(n, i);
  float x[8];
  load8_bf16(inp + i, k_n, vec, x);
#pragma unroll
  for (int k = 0; k < 8; k++) x[k] = act_fwd(act, x[k]);
  store8_bf16(out + i, k_n, vec, x);
}

static __global__ void act_bwd_kernel(bf16 *dinp, const bf16 *dout, const bf16 *inp, size_t n, int act, int vec) {
  const size_t i = group_start();
  if (i >= n) return;
  const int k_n = left8(n, i);
  float x[8], dy[8];
  load8_bf16(inp + i, k_n, vec, x);
  load8_bf16(dout + i, k_n, vec, dy);
#pragma unroll
  for (int k = 0; k < 8; k++) x[k] = dy[k] * act_grad(act, x[k]);
  store8_bf16(dinp + i, k_n, vec, x);
}

// SwiGLU over out [N, I] (total = N * I) from gu [N, 2I] = gate | up. vec: I % 8 == 0 and every pointer
// 16-byte aligned, so a group never crosses a row; otherwise each element finds its own row.
static __global__ void swiglu_fwd_kernel(bf16 *out, const bf16 *gu, size_t total, int I, int vec) {
  const size_t e0 = group_start();
  if (e0 >= total) return;
  if (vec) {
    const size_t n = e0 / I, i = e0 % I;
    const bf16 *gate = gu + n * 2 * I + i;
    float g[8], u[8];
    load8_bf16(gate, 8, 1, g);
    load8_bf16(gate + I, 8, 1, u);
#pragma unroll
    for (int k = 0; k < 8; k++) g[k] = g[k] * sigmoid(g[k]) * u[k];
    store8_bf16(out + e0, 8, 1, g);
  } else {
    for (size_t e = e0; e < e0 + 8 && e < total; e++) {
      const size_t n = e / I, i = e % I;
      const float g = __bfloat162float(gu[n * 2 * I + i]), u = __bfloat162float(gu[n * 2 * I + I + i]);
      out[e] = __float2bfloat16_rn(g * sigmoid(g) * u);
    }
  }
}

// dgu [N, 2I] = dgate | dup from dout [N, I] and gu: silu'(a) = s (1 + a (1 - s)), s = sigmoid(a).
static __global__ void swiglu_bwd_kernel(bf16 *dgu, const bf16 *dout, const bf16 *gu, size_t total, int I, int vec) {
  const size_t e0 = group_start();
  if (e0 >= total) return;
  if (vec) {
    const size_t n = e0 / I, i = e0 % I, at = n * 2 * I + i;
    float g[8], u[8], dy[8], dg[8], du[8];
    load8_bf16(gu + at, 8, 1, g);
    load8_bf16(gu + at + I, 8, 1, u);
    load8_bf16(dout + e0, 8, 1, dy);
#pragma unroll
    for (int k = 0; k < 8; k++) {
      const float s = sigmoid(g[k]);
      dg[k] = dy[k] * u[k] * s * (1.0f + g[k] * (1.0f - s));
      du[k] = dy[k] * g[k] * s;
    }
    store8_bf16(dgu + at, 8, 1, dg);
    store8_bf16(dgu + at + I, 8, 1, du);
  } else {
    for (size_t e = e0; e < e0 + 8 && e < total; e++) {
      const size_t n = e / I, i = e % I, at = n * 2 * I + i;
      const float g = __bfloat162float(gu[at]), u = __bfloat162float(gu[at + I]), dy = __bfloat162float(dout[e]);
      const float s = sigmoid(g);
      dgu[at] = __float2bfloat16_rn(dy * u * s * (1.0f + g * (1.0f - s)));
      dgu[at + I] = __float2bfloat16_rn(dy * g * s);
    }
  }
}

// ---- the backend's entry points ----

static int all_aligned(const void *a, const void *b, const void *c) {
  return cuda_aligned(a, 16) && cuda_aligned(b, 16) && (!c || cuda_aligned(c, 16));
}

static unsigned ew_blocks(size_t n) { return cuda_blocks((n + 7) / 8, EW_THREADS); }

void cuda_to_act(lcc_backend *be, void *out, const float *inp, size_t n) {
  if (n == 0) return;
  to_act_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_of(be)->stream>>>((bf16 *)out, inp, n, all_aligned(out, inp, NULL));
  CUDA_LAUNCH_CHECK();
}

void cuda_from_act(lcc_backend *be, float *out, const void *inp, size_t n) {
  if (n == 0) return;
  from_act_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_of(be)->stream>>>(out, (const bf16 *)inp, n,
                                                                         all_aligned(out, inp, NULL));
  CUDA_LAUNCH_CHECK();
}

void cuda_add(lcc_backend *be, void *out, const void *a, const void *b, size_t n) {
  if (n == 0) return;
  add_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_of(be)->stream>>>((bf16 *)out, (const bf16 *)a, (const bf16 *)b, n,
                                                                    all_aligned(out, a, b));
  CUDA_LAUNCH_CHECK();
}

void cuda_swiglu_fwd(lcc_backend *be, void *out, const void *gu, int N, int I) {
  const size_t total = (size_t)N * I;
  if (total == 0) return;
  const int vec = I % 8 == 0 && all_aligned(out, gu, NULL);
  swiglu_fwd_kernel<<<ew_blocks(total), EW_THREADS, 0, cuda_of(be)->stream>>>((bf16 *)out, (const bf16 *)gu, total, I,
                                                                               vec);
  CUDA_LAUNCH_CHECK();
}

void cuda_swiglu_bwd(lcc_backend *be, void *dgu, const void *dout, const void *gu, int N, int I) {
  const size_t total = (size_t)N * I;
  if (total == 0) return;
  const int vec = I % 8 == 0 && all_aligned(dgu, dout, gu);
  swiglu_bwd_kernel<<<ew_blocks(total), EW_THREADS, 0, cuda_of(be)->stream>>>(
      (bf16 *)dgu, (const bf16 *)dout, (const bf16 *)gu, total, I, vec);
  CUDA_LAUNCH_CHECK();
}

static void act_fwd_launch(lcc_backend *be, void *out, const void *inp, size_t n, int act) {
  if (n == 0) return;
  act_fwd_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_of(be)->stream>>>((bf16 *)out, (const bf16 *)inp, n, act,
                                                                        all_aligned(out, inp, NULL));
  CUDA_LAUNCH_CHECK();
}

static void act_bwd_launch(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n, int act) {
  if (n == 0) return;
  act_bwd_kernel<<<ew_blocks(n), EW_THREADS, 0, cuda_of(be)->stream>>>(
      (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)inp, n, act, all_aligned(dinp, dout, inp));
  CUDA_LAUNCH_CHECK();
}

void cuda_quick_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n) {
  act_fwd_launch(be, out, inp, n, ACT_QUICK_GELU);
}
void cuda_quick_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n) {
  act_bwd_launch(be, dinp, dout, inp, n, ACT_QUICK_GELU);
}
void cuda_gelu_fwd(lcc_backend *be, void *out, const void *inp, size_t n) { act_fwd_launch(be, out, inp, n, ACT_GELU); }
void cuda_gelu_bwd(lcc_backend *be, void *dinp, const void *dout, const void *inp, size_t n) {
  act_bwd_launch(be, dinp, dout, inp, n, ACT_GELU);
}
