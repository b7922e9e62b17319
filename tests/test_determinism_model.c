// The CPU backend gives bit-identical losses and gradients for any thread count (DESIGN.md section 3):
// a forward + backward of the whole model (vision tower trainable) with 1, 2 and 3 threads; and with
// activation recompute or the LM head's gradients fused into the forward, which must not change a bit either.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "testlib.h"
#include "util.h"

static float *run(const lcc_config *cfg, const lcc_batch *b, int threads, int recompute, int fuse, double *loss,
                  size_t *n) {
  lcc_backend *be = lcc_cpu_backend(threads);
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, cfg, be, "") == 0, "%s", lcc_last_error());
  m.recompute = recompute;
  m.fuse_head_grad = fuse;
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
  float *g1 = run(&cfg, &ob.b, 1, 0, 0, &l1, &n);
  for (int threads = 2; threads <= 3; threads++) {
    float *g2 = run(&cfg, &ob.b, threads, 0, 0, &l2, &n);
    checkf(l1 == l2 && memcmp(g1, g2, n * sizeof(float)) == 0,
           "1 vs %d threads: loss %.9f vs %.9f, %zu gradients bit-identical", threads, l1, l2, n);
    free(g2);
  }
  // activation recompute: backward rebuilds each decoder layer from its input; the same bits come out
  float *g3 = run(&cfg, &ob.b, 2, 1, 0, &l2, &n);
  checkf(l1 == l2 && memcmp(g1, g3, n * sizeof(float)) == 0,
         "activation recompute on vs off: loss and %zu gradients bit-identical", n);
  free(g3);
  // the LM head's gradients computed in the forward's pass over the head (training) instead of backward's
  float *g4 = run(&cfg, &ob.b, 2, 1, 1, &l2, &n);
  checkf(l1 == l2 && memcmp(g1, g4, n * sizeof(float)) == 0,
         "LM-head gradients fused into the forward: loss and %zu gradients bit-identical", n);
  free(g4);
  free(g1);
  lcc_batch_free(&ob);
  return test_finish("test_determinism_model");
}
