// Frozen modules: no gradient memory for them, no change to the gradients of the others (compared with a
// model that trains everything), and a clear error for a freeze list that names nothing or splits a
// fused projection.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "util.h"

static int failures = 0;

static void check(int cond, const char *what) {
  failures += !cond;
  printf("%-4s %s\n", cond ? "ok" : "FAIL", what);
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "configs/model/tiny.json") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, 2, 3, 4, 4, 3, 5);

  lcc_model all, part;
  LCC_CHECK(lcc_model_create(&all, &cfg, be, "") == 0, "%s", lcc_last_error());
  LCC_CHECK(lcc_model_create(&part, &cfg, be, "visual.blocks, model.layers.0, model.norm") == 0, "%s", lcc_last_error());
  lcc_model_init_random(&all, 9);
  lcc_model_init_random(&part, 9);
  check(part.vision_trainable && part.n_grad < all.n_grad, "a partly frozen model holds fewer gradients");
  LCC_CHECK(lcc_model_forward(&all, &ob.b) == 0 && lcc_model_forward(&part, &ob.b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&all);
  lcc_model_backward(&part);
  check(all.loss == part.loss, "freezing does not change the loss");
  int same = 1, frozen_ok = 1;
  for (int i = 0; i < all.n_params; i++) {
    const lcc_param *p = &part.params[i];
    int frozen = !strncmp(p->name, "visual.blocks.", 14) || !strncmp(p->name, "model.layers.0.", 15) ||
                 !strcmp(p->name, "model.norm.weight");
    if (frozen) {
      frozen_ok &= lcc_g(&part, i) == NULL;
      continue;
    }
    frozen_ok &= lcc_g(&part, i) != NULL;
    same &= memcmp(lcc_g(&all, i), lcc_g(&part, i), p->numel * sizeof(float)) == 0;
  }
  check(frozen_ok, "exactly the frozen tensors have no gradient");
  check(same, "every trainable tensor's gradient equals the fully trainable model's, bit for bit");
  lcc_model_destroy(&all);
  lcc_model_destroy(&part);

  lcc_model m;
  int rc = lcc_model_create(&m, &cfg, be, "vision");
  check(rc != 0 && strstr(lcc_last_error(), "'vision' matches no parameter"), lcc_last_error());
  rc = lcc_model_create(&m, &cfg, be, "model.layers.1.self_attn.k_proj");
  check(rc != 0 && strstr(lcc_last_error(), "k_proj") && strstr(lcc_last_error(), "freeze both or neither"), lcc_last_error());
  lcc_batch_free(&ob);
  be->destroy(be);
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
