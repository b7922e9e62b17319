// Frozen modules: no gradient memory for them, no change to the gradients of the others (compared with a
// model that trains everything), and a clear error for a freeze list that names nothing or splits a
// fused projection.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "testlib.h"
#include "util.h"

// The gradient-ready hook: ranges arrive in decreasing order and tile [0, n_grad) exactly.
typedef struct {
  size_t next_end;   // the end the next range must have
  int ok, count;
} tiling;

static void on_ready(void *ctx, size_t begin, size_t end) {
  tiling *t = ctx;
  t->ok &= end == t->next_end && begin < end;
  t->next_end = begin;
  t->count++;
}

static void check_tiling(const char *config, const char *freeze, const lcc_batch *b, lcc_backend *be) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, config) == 0, "%s", lcc_last_error());
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, &cfg, be, freeze) == 0, "%s", lcc_last_error());
  lcc_model_init_random(&m, 1);
  tiling t = {m.n_grad, 1, 0};
  m.grad_hook = (lcc_grad_hook){&t, on_ready};
  LCC_CHECK(lcc_model_forward(&m, b) == 0, "%s", lcc_last_error());
  lcc_model_backward(&m);
  checkf(t.ok && t.next_end == 0, "%s, freeze '%s': %d ready ranges tile the %zu gradients in decreasing order", config,
         freeze, t.count, m.n_grad);
  lcc_model_destroy(&m);
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "configs/model/tiny.json") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_owned_batch ob;
  lcc_batch_synthetic(&ob, &cfg, &(lcc_synth_shape){3, 4, 4, 3}, 5, 0, 2);

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

  check_tiling("configs/model/tiny.json", "", &ob.b, be);
  check_tiling("configs/model/tiny.json", "visual", &ob.b, be);
  check_tiling("configs/model/tiny.json", "model.embed_tokens, model.layers.1", &ob.b, be);
  check_tiling("tests/fixtures/tiny_t", "visual.merger", &ob.b, be);
  lcc_owned_batch text_only;   // no pictures: the vision stages are still reported
  lcc_batch_synthetic(&text_only, &cfg, &(lcc_synth_shape){0, 4, 4, 3}, 5, 0, 1);
  check_tiling("configs/model/tiny.json", "", &text_only.b, be);
  lcc_batch_free(&text_only);

  lcc_model m;
  expect_error(lcc_model_create(&m, &cfg, be, "vision"), "a freeze list naming nothing", "'vision' matches no parameter",
               NULL);
  expect_error(lcc_model_create(&m, &cfg, be, "model.layers.1.self_attn.k_proj"), "half a fused projection", "k_proj",
               "freeze both or neither", NULL);
  lcc_batch_free(&ob);
  be->destroy(be);
  return test_finish("test_freeze");
}
