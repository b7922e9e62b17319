// Rotary embedding, NEOX pairs (i, i + D/2), in place on the query and key heads of a packed qkv.
// The value heads pass through. Backward is the transposed rotation (by -theta) on the gradient.
#include "cpu.h"

// Rotates every q and k head of each row by sign * theta (sign = +1 forward, -1 backward).
static void rotate(float *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D, float sign) {
  int half = D / 2, row = (Hq + 2 * Hkv) * D;
#pragma omp parallel for schedule(static) if ((size_t)T * row >= CPU_PAR_MIN)
  for (int t = 0; t < T; t++) {
    const float *c = cos + (size_t)t * half, *s = sin + (size_t)t * half;
    for (int h = 0; h < Hq + Hkv; h++) {   // q heads then k heads are contiguous
      float *x = qkv + (size_t)t * row + (size_t)h * D;
      for (int i = 0; i < half; i++) {
        float a = x[i], b = x[i + half], si = sign * s[i];
        x[i] = a * c[i] - b * si;
        x[i + half] = b * c[i] + a * si;
      }
    }
  }
}

void cpu_rope_fwd(lcc_backend *be, void *qkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D) {
  // qkv [T, (Hq + 2 Hkv) D]; cos, sin [T, D/2]
  rotate(qkv, cos, sin, T, Hq, Hkv, D, 1.0f);
}

void cpu_rope_bwd(lcc_backend *be, void *dqkv, const float *cos, const float *sin, int T, int Hq, int Hkv, int D) {
  // dqkv [T, (Hq + 2 Hkv) D]; cos, sin [T, D/2]
  rotate(dqkv, cos, sin, T, Hq, Hkv, D, -1.0f);
}
