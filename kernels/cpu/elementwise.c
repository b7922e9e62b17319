// Elementwise ops: residual add, SwiGLU (decoder MLP), QuickGELU (vision MLP), exact GELU (merger MLP).
#include "cpu.h"

#include <math.h>

static inline float sigmoidf(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

void cpu_add(lcc_backend *be, void *out_, const void *a_, const void *b_, size_t n) {
  float *out = out_;                       // [n]
  const float *a = a_, *b = b_;            // [n], [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void cpu_swiglu_fwd(lcc_backend *be, void *out_, const void *gu_, int N, int I) {
  float *out = out_;        // [N, I]
  const float *gu = gu_;    // [N, 2I]: gate | up
#pragma omp parallel for schedule(static) if ((size_t)N * I >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *gate = gu + (size_t)n * 2 * I, *up = gate + I;
    float *y = out + (size_t)n * I;
    for (int i = 0; i < I; i++) y[i] = gate[i] * sigmoidf(gate[i]) * up[i];
  }
}

void cpu_swiglu_bwd(lcc_backend *be, void *dgu_, const void *dout_, const void *gu_, int N, int I) {
  float *dgu = dgu_;           // [N, 2I]: dgate | dup
  const float *dout = dout_;   // [N, I]
  const float *gu = gu_;       // [N, 2I]
#pragma omp parallel for schedule(static) if ((size_t)N * I >= CPU_PAR_MIN)
  for (int n = 0; n < N; n++) {
    const float *gate = gu + (size_t)n * 2 * I, *up = gate + I, *dy = dout + (size_t)n * I;
    float *dgate = dgu + (size_t)n * 2 * I, *dup = dgate + I;
    for (int i = 0; i < I; i++) {
      float a = gate[i], s = sigmoidf(a);
      dgate[i] = dy[i] * up[i] * s * (1.0f + a * (1.0f - s));   // silu'(a) = s (1 + a (1 - s))
      dup[i] = dy[i] * a * s;
    }
  }
}

void cpu_quick_gelu_fwd(lcc_backend *be, void *out_, const void *inp_, size_t n) {
  float *out = out_;           // [n]
  const float *inp = inp_;     // [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = inp[i] * sigmoidf(1.702f * inp[i]);
}

void cpu_quick_gelu_bwd(lcc_backend *be, void *dinp_, const void *dout_, const void *inp_, size_t n) {
  float *dinp = dinp_;         // [n]
  const float *dout = dout_;   // [n]
  const float *inp = inp_;     // [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float x = inp[i], s = sigmoidf(1.702f * x);
    dinp[i] = dout[i] * (s + 1.702f * x * s * (1.0f - s));
  }
}

void cpu_gelu_fwd(lcc_backend *be, void *out_, const void *inp_, size_t n) {
  float *out = out_;           // [n]
  const float *inp = inp_;     // [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * (float)M_SQRT1_2));
}

void cpu_gelu_bwd(lcc_backend *be, void *dinp_, const void *dout_, const void *inp_, size_t n) {
  float *dinp = dinp_;         // [n]
  const float *dout = dout_;   // [n]
  const float *inp = inp_;     // [n]
  const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {   // GELU'(x) = Phi(x) + x phi(x)
    float x = inp[i];
    float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)), pdf = inv_sqrt_2pi * cpu_expf(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}
