// The CPU backend gives bit-identical losses and gradients for any thread count (DESIGN.md section 3):
// a forward + backward of the whole model (vision tower trainable) with 1, 2 and 3 threads; and with
// activation recompute, which must not change a bit either.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "util.h"

static float *run(const lcc_config *cfg, const lcc_batch *b, int threads, int recompute, double *loss, size_t *n) {
  lcc_backend *be = lcc_cpu_backend(threads);
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, cfg, be, "") == 0, "%s", lcc_last_error());
  m.recompute = recompute;
  lcc_model_init_random(&m, 3);
  LCC_CHECK(lcc_model_forward(&m, b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&m);
  *loss = m.loss;
  *n = m.n_grad;
  float *g = lcc_malloc(m.n_grad * sizeof(float));
  memcpy(g, m.grads, m.n_grad * sizeof(float));
  lcc_model_destroy(&m);
  be->destroy(be);
  return g;
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "configs/model/tiny.json") == 0, "%s", lcc_last_error());
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, &(lcc_synth_shape){5, 4, 6, 5}, 11, 0, 3);
  double l1, l2;
  size_t n;
  float *g1 = run(&cfg, &ob.b, 1, 0, &l1, &n);
  int failures = 0;
  for (int threads = 2; threads <= 3; threads++) {
    float *g2 = run(&cfg, &ob.b, threads, 0, &l2, &n);
    int same = l1 == l2 && memcmp(g1, g2, n * sizeof(float)) == 0;
    failures += !same;
    printf("%s: 1 vs %d threads: loss %.9f vs %.9f, %zu gradients %s\n", same ? "ok" : "FAIL", threads, l1, l2, n,
           same ? "bit-identical" : "differ");
    free(g2);
  }
  // activation recompute: backward rebuilds each decoder layer from its input; the same bits come out
  float *g3 = run(&cfg, &ob.b, 2, 1, &l2, &n);
  int same = l1 == l2 && memcmp(g1, g3, n * sizeof(float)) == 0;
  failures += !same;
  printf("%s: activation recompute on vs off: loss and %zu gradients %s\n", same ? "ok" : "FAIL", n, same ? "bit-identical" : "differ");
  free(g3);
  free(g1);
  lcc_batch_free(&ob);
  return failures ? 1 : 0;
}
