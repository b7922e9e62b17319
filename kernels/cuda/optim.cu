// AdamW on fp32 master weights (and their bf16 compute copy), and the fp32 gradient utilities: sum of
// squares (for the clipping norm), scale, add.
//
// AdamW and the utilities use the IEEE-rounded intrinsics (__fmul_rn, __fadd_rn, ...) in the CPU backend's
// operation order: nvcc may not fuse them into FMAs, so the updates match the CPU backend (built with
// -ffp-contract=off) bit for bit.
#include "cuda_common.h"

#include <math.h>

#define OPT_THREADS 256
#define SUMSQ_THREADS 256
#define SUMSQ_MAX_BLOCKS 1024

// ---- AdamW ----

// One element, as cpu_adamw: decay first (p *= 1 - lr wd), then p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
static __device__ __forceinline__ float adamw_one(float *m, float *v, float p, float g_raw, float beta1, float beta2,
                                                  float eps, float decay, float step_size, float bc2_sqrt,
                                                  float grad_scale) {
  const float g = __fmul_rn(g_raw, grad_scale);
  const float mi = __fadd_rn(__fmul_rn(beta1, *m), __fmul_rn(__fsub_rn(1.0f, beta1), g));
  const float vi = __fadd_rn(__fmul_rn(beta2, *v), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, beta2), g), g));
  *m = mi;
  *v = vi;
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
  return __fsub_rn(__fmul_rn(p, decay), __fdiv_rn(__fmul_rn(step_size, mi), denom));
}

static __global__ void adamw_kernel(float *param, bf16 *param_act, const float *grad, float *m, float *v, size_t n,
                                    float beta1, float beta2, float eps, float decay, float step_size, float bc2_sqrt,
                                    float grad_scale, int vec) {
  // param, grad, m, v [n] fp32; param_act [n] bf16 or NULL. A thread takes 4 elements; vec: the fp32 arrays
  // 16-byte aligned and param_act 8-byte aligned.
  const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  if (vec && i + 4 <= n) {
    float4 p = *(float4 *)(param + i), g = *(const float4 *)(grad + i);
    float4 mm = *(float4 *)(m + i), vv = *(float4 *)(v + i);
    p.x = adamw_one(&mm.x, &vv.x, p.x, g.x, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale);
    p.y = adamw_one(&mm.y, &vv.y, p.y, g.y, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale);
    p.z = adamw_one(&mm.z, &vv.z, p.z, g.z, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale);
    p.w = adamw_one(&mm.w, &vv.w, p.w, g.w, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale);
    *(float4 *)(param + i) = p;
    *(float4 *)(m + i) = mm;
    *(float4 *)(v + i) = vv;
    if (param_act) {
      uint2 u;
      *(__nv_bfloat162 *)&u.x = __floats2bfloat162_rn(p.x, p.y);
      *(__nv_bfloat162 *)&u.y = __floats2bfloat162_rn(p.z, p.w);
      *(uint2 *)(param_act + i) = u;
    }
  } else {
    for (size_t j = i; j < i + 4 && j < n; j++) {
      const float p = adamw_one(m + j, v + j, param[j], grad[j], beta1, beta2, eps, decay, step_size, bc2_sqrt,
                                grad_scale);
      param[j] = p;
      if (param_act) param_act[j] = __float2bfloat16_rn(p);
    }
  }
}

void cuda_adamw(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v, size_t n,
                float lr, float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale) {
  LCC_CHECK(step >= 1, "adamw step must be >= 1, got %d", step);
  if (n == 0) return;
  // Host-side constants exactly as cpu_adamw computes them.
  const float decay = 1.0f - lr * weight_decay;
  const float step_size = (float)(lr / (1.0 - pow(beta1, step)));
  const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
  const int vec = cuda_aligned(param, 16) && cuda_aligned(grad, 16) && cuda_aligned(m, 16) && cuda_aligned(v, 16) &&
                  (!param_act || cuda_aligned(param_act, 8));
  adamw_kernel<<<cuda_blocks((n + 3) / 4, OPT_THREADS), OPT_THREADS, 0, cuda_of(be)->stream>>>(
      param, (bf16 *)param_act, grad, m, v, n, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale, vec);
  CUDA_LAUNCH_CHECK();
}

// ---- sum of squares: fixed grid (a function of n only), block sums in double, then one block adds them ----

static __device__ __forceinline__ double block_sum_f64(double v, double *smem) {
  // smem: 32 doubles; blockDim.x a multiple of 32. Fixed order, the total in every thread.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < n_warps ? smem[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __global__ void sumsq_partial_kernel(double *partial, const float *x, size_t n, int vec) {
  // partial [gridDim.x]: each block's sum of x^2 over a grid-stride slice. vec: x 16-byte aligned.
  __shared__ double smem[32];
  const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
  double acc = 0.0;
  if (vec) {
    const size_t n4 = n / 4;
    for (size_t i = tid; i < n4; i += stride) {
      const float4 f = *(const float4 *)(x + 4 * i);
      acc += (double)f.x * f.x + (double)f.y * f.y + (double)f.z * f.z + (double)f.w * f.w;
    }
    if (tid < n % 4) acc += (double)x[4 * n4 + tid] * x[4 * n4 + tid];   // the tail: the first threads
  } else {
    for (size_t i = tid; i < n; i += stride) acc += (double)x[i] * x[i];
  }
  acc = block_sum_f64(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

static __global__ void sumsq_final_kernel(double *out, const double *partial, int n_partial) {
  // one block of SUMSQ_MAX_BLOCKS threads: out[0] = sum of partial [n_partial]
  __shared__ double smem[32];
  const double v = (int)threadIdx.x < n_partial ? partial[threadIdx.x] : 0.0;
  const double total = block_sum_f64(v, smem);
  if (threadIdx.x == 0) out[0] = total;
}

double cuda_sum_squares(lcc_backend *be, const float *x, size_t n) {
  if (n == 0) return 0.0;
  cudaStream_t st = cuda_of(be)->stream;
  const size_t want = (n + SUMSQ_THREADS * 4 - 1) / (SUMSQ_THREADS * 4);
  const int blocks = (int)(want < SUMSQ_MAX_BLOCKS ? want : SUMSQ_MAX_BLOCKS);
  double *partial = (double *)cuda_scratch(be, SCRATCH_SUMSQ, (SUMSQ_MAX_BLOCKS + 1) * sizeof(double));
  double *result = partial + SUMSQ_MAX_BLOCKS, host = 0.0;
  sumsq_partial_kernel<<<blocks, SUMSQ_THREADS, 0, st>>>(partial, x, n, cuda_aligned(x, 16));
  CUDA_LAUNCH_CHECK();
  sumsq_final_kernel<<<1, SUMSQ_MAX_BLOCKS, 0, st>>>(result, partial, blocks);
  CUDA_LAUNCH_CHECK();
  CUDA_CHECK(cudaMemcpyAsync(&host, result, sizeof host, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  return host;
}

// ---- scale and add ----

static __global__ void scale_add_kernel(float *x, const float *a, float s, size_t n, int vec) {
  // x [n] *= s (a == NULL) or x += a [n]; 4 elements per thread, vec: both 16-byte aligned
  const size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i >= n) return;
  if (vec && i + 4 <= n) {
    float4 f = *(float4 *)(x + i);
    if (a) {
      const float4 g = *(const float4 *)(a + i);
      f.x = __fadd_rn(f.x, g.x), f.y = __fadd_rn(f.y, g.y), f.z = __fadd_rn(f.z, g.z), f.w = __fadd_rn(f.w, g.w);
    } else {
      f.x = __fmul_rn(f.x, s), f.y = __fmul_rn(f.y, s), f.z = __fmul_rn(f.z, s), f.w = __fmul_rn(f.w, s);
    }
    *(float4 *)(x + i) = f;
  } else {
    for (size_t j = i; j < i + 4 && j < n; j++) x[j] = a ? __fadd_rn(x[j], a[j]) : __fmul_rn(x[j], s);
  }
}

void cuda_scale(lcc_backend *be, float *x, float s, size_t n) {
  if (n == 0) return;
  scale_add_kernel<<<cuda_blocks((n + 3) / 4, OPT_THREADS), OPT_THREADS, 0, cuda_of(be)->stream>>>(
      x, NULL, s, n, cuda_aligned(x, 16));
  CUDA_LAUNCH_CHECK();
}

void cuda_add_f32(lcc_backend *be, float *out, const float *a, size_t n) {
  if (n == 0) return;
  scale_add_kernel<<<cuda_blocks((n + 3) / 4, OPT_THREADS), OPT_THREADS, 0, cuda_of(be)->stream>>>(
      out, a, 1.0f, n, cuda_aligned(out, 16) && cuda_aligned(a, 16));
  CUDA_LAUNCH_CHECK();
}
