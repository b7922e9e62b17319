// Rotary embedding, NEOX pairs (i, i + D/2), in place on the query and key heads of a packed bf16 qkv; the
// value heads pass through. fp32 math on the fp32 cos/sin tables, one rounding per output. (HF rotates the
// LLM's q and k in bf16 with bf16 cos/sin; the fp32 rotation here is the more accurate of the two.)
// Backward is the transposed rotation (by -theta) on the gradient.
#include "cuda_common.h"

#define ROPE_THREADS 128

static __global__ void rope_kernel(bf16 *qkv, const float *cos, const float *sin, int H2, int half, int row, float sign,
                                   int vec2) {
  // one block per token t = blockIdx.x: qkv row [row = (Hq + 2 Hkv) * D], its first H2 = Hq + Hkv heads
  // rotated; cos, sin [T, half]. vec2: two adjacent pairs per thread (half even, 4-byte aligned qkv, 8-byte
  // aligned tables).
  const size_t t = blockIdx.x;
  const float *c = cos + t * half, *s = sin + t * half;
  bf16 *x = qkv + t * row;
  const int per = vec2 ? 2 : 1, items = H2 * half / per, D = 2 * half;
  for (int w = threadIdx.x; w < items; w += blockDim.x) {
    const int p = w * per, h = p / half, i = p % half;
    bf16 *xh = x + (size_t)h * D;
    if (vec2) {
      const float2 a = __bfloat1622float2(*(const __nv_bfloat162 *)(xh + i));
      const float2 b = __bfloat1622float2(*(const __nv_bfloat162 *)(xh + i + half));
      const float2 cc = *(const float2 *)(c + i), ss = *(const float2 *)(s + i);
      const float s0 = sign * ss.x, s1 = sign * ss.y;
      *(__nv_bfloat162 *)(xh + i) = __floats2bfloat162_rn(a.x * cc.x - b.x * s0, a.y * cc.y - b.y * s1);
      *(__nv_bfloat162 *)(xh + i + half) = __floats2bfloat162_rn(b.x * cc.x + a.x * s0, b.y * cc.y + a.y * s1);
    } else {
      const float a = __bfloat162float(xh[i]), b = __bfloat162float(xh[i + half]), si = sign * s[i];
      xh[i] = __float2bfloat16_rn(a * c[i] - b * si);
      xh[i + half] = __float2bfloat16_rn(b * c[i] + a * si);
    }
  }
}

static void rope(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D,
                 float sign) {
  if (T == 0) return;
  LCC_CHECK(D % 2 == 0, "rope: head dim %d is odd", D);
  const int half = D / 2, row = (Hq + 2 * Hkv) * D;
  // Every pair start t * row + h * D + i is even when i is: 4-byte bf16x2 accesses stay aligned.
  const int vec2 = half % 2 == 0 && cuda_aligned(qkv, 4) && cuda_aligned(cos, 8) && cuda_aligned(sin, 8);
  rope_kernel<<<(unsigned)T, ROPE_THREADS, 0, cuda_of(be)->stream>>>((bf16 *)qkv, cos, sin, Hq + Hkv, half, row,
                                                                       sign, vec2);
  CUDA_LAUNCH_CHECK();
}

void cuda_rope_fwd(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D) {
  rope(be, qkv, cos, sin, T, Hq, Hkv, D, 1.0f);   // qkv [T, (Hq + 2 Hkv) D]; cos, sin [T, D/2]
}

void cuda_rope_bwd(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D) {
  rope(be, dqkv, cos, sin, T, Hq, Hkv, D, -1.0f);
}
