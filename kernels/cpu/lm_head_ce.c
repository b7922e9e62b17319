// Fused LM head + cross-entropy over chunks of the rows that have a target: logits for CE_CHUNK rows at a
// time, turned in place into their gradient, then pushed back through the head. Never holds [T, V] logits;
// rows without a target cost nothing. Chunks run in row order, so dw's sum order is fixed.
#include "cpu.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CE_CHUNK 256   // rows per chunk: the logits scratch is CE_CHUNK x V floats (155 MB at V = 152K)

// Cross-entropy of one row of logits[V] against target; the row is overwritten. With want_grad it becomes
// the gradient of weight * loss: weight * (softmax - onehot). Returns the loss, logsumexp - logits[target].
static float ce_row(float *logits, int V, int target, int want_grad, float weight) {
  float mx = cpu_max(logits, V), lt = logits[target];
  for (int i = 0; i < V; i++) logits[i] = cpu_expf(logits[i] - mx);
  double sum = cpu_sum(logits, V);   // in double over the whole vocabulary: the log-sum-exp stays exact to fp32
  if (want_grad) {
    float p_scale = (float)(weight / sum);   // softmax = e / sum
    for (int i = 0; i < V; i++) logits[i] *= p_scale;
    logits[target] -= weight;
  }
  return (float)(log(sum) + (double)(mx - lt));
}

void cpu_lm_head_ce(lcc_backend *be, float *losses, void *dx_, float *dw, const void *x_, const void *w_,
                    const int32_t *targets, const float *weights, int T, int C, int V) {
  float *dx = dx_;          // [T, C] or NULL (overwritten)
  const float *x = x_;      // [T, C]
  const float *w = w_;      // [V, C]
  // losses [T] (out); dw [V, C] (accumulated) or NULL; targets [T] (< 0: ignored); weights [T]
  int want_grad = dx != NULL || dw != NULL;
  int *rows = lcc_malloc((size_t)T * sizeof(int));   // the rows with a target, in order
  int n_rows = 0;
  for (int t = 0; t < T; t++) {
    if (targets[t] >= 0) {
      LCC_CHECK(targets[t] < V, "lm_head_ce: target %d of row %d outside the vocabulary (%d)", targets[t], t, V);
      rows[n_rows++] = t;
    } else {
      losses[t] = 0.0f;
      if (dx) memset(dx + (size_t)t * C, 0, (size_t)C * sizeof(float));
    }
  }
  float *xc = lcc_malloc((size_t)CE_CHUNK * C * sizeof(float));       // [chunk, C] gathered rows
  float *logits = lcc_malloc((size_t)CE_CHUNK * V * sizeof(float));   // [chunk, V], then dlogits
  float *dxc = dx ? lcc_malloc((size_t)CE_CHUNK * C * sizeof(float)) : NULL;   // [chunk, C]
  for (int c0 = 0; c0 < n_rows; c0 += CE_CHUNK) {
    int nc = n_rows - c0 < CE_CHUNK ? n_rows - c0 : CE_CHUNK;
    for (int r = 0; r < nc; r++) {
      memcpy(xc + (size_t)r * C, x + (size_t)rows[c0 + r] * C, (size_t)C * sizeof(float));
    }
    cpu_gemm(0, 1, nc, V, C, 1.0f, xc, C, w, C, 0.0f, logits, V);
#pragma omp parallel for schedule(static) if ((size_t)nc * V >= CPU_PAR_MIN)
    for (int r = 0; r < nc; r++) {
      int t = rows[c0 + r];
      losses[t] = ce_row(logits + (size_t)r * V, V, targets[t], want_grad, want_grad ? weights[t] : 0.0f);
    }
    if (dx) {   // dx rows = dlogits @ w
      cpu_gemm(0, 0, nc, C, V, 1.0f, logits, V, w, C, 0.0f, dxc, C);
      for (int r = 0; r < nc; r++) {
        memcpy(dx + (size_t)rows[c0 + r] * C, dxc + (size_t)r * C, (size_t)C * sizeof(float));
      }
    }
    if (dw) {   // dw += dlogits^T @ x rows
      cpu_gemm(1, 0, V, C, nc, 1.0f, logits, V, xc, C, 1.0f, dw, C);
    }
  }
  free(rows);
  free(xc);
  free(logits);
  free(dxc);
}
