// AdamW (PyTorch semantics) and the fp32 gradient utilities around it: sum of squares (for the clipping
// norm), in-place scaling and add (the CUDA twin: cuda/optim.cu).
#include "cpu.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

// Elements per partial sum of sum_squares: fixed, so the partials and their order never depend on the
// thread count.
#define SUMSQ_CHUNK 16384

void cpu_adamw(lcc_backend *be, float *param, void *param_act, const float *grad, float *m, float *v,
               size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step,
               float grad_scale) {
  // param, grad, m, v: [n]
  LCC_CHECK(param_act == NULL || param_act == param, "cpu adamw: param_act must be NULL or param");
  LCC_CHECK(step >= 1, "adamw step must be >= 1, got %d", step);
  // As torch.optim.AdamW: decay first (p *= 1 - lr wd), then p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
  float decay = 1.0f - lr * weight_decay;
  float step_size = (float)(lr / (1.0 - pow(beta1, step)));
  float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float g = grad[i] * grad_scale;
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
}

// Sum of x[n]^2 in double, in 8 interleaved lanes added up in a fixed order (as cpu_sum).
static double sum_squares_chunk(const float *x, int n) {
  double lane[8] = {0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * x[i + k];
  }
  double s = 0.0;
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

double cpu_sum_squares(lcc_backend *be, const float *x, size_t n) {
  // x [n]
  size_t n_chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
  double *partial = lcc_malloc(n_chunks * sizeof(double));
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t c = 0; c < n_chunks; c++) {
    size_t i0 = c * SUMSQ_CHUNK, i1 = i0 + SUMSQ_CHUNK < n ? i0 + SUMSQ_CHUNK : n;
    partial[c] = sum_squares_chunk(x + i0, (int)(i1 - i0));
  }
  double total = 0.0;
  for (size_t c = 0; c < n_chunks; c++) total += partial[c];
  free(partial);
  return total;
}

void cpu_scale(lcc_backend *be, float *x, float s, size_t n) {
  // x [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) x[i] *= s;
}

void cpu_add_f32(lcc_backend *be, float *out, const float *a, size_t n) {
  // out [n] += a [n]
#pragma omp parallel for schedule(static) if (n >= CPU_PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] += a[i];
}
