// Overfit: 200 AdamW steps on one fixed tiny batch must bring the loss under 5% of its first value.
// Also checks that the run is reproducible bit for bit (same seed, same losses).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "trainer.h"
#include "util.h"

static int run(lcc_train_opts *o, const char *out, double *first, double *last) {
  LCC_CHECK(lcc_opts_set(o, lcc_train_opt_table, lcc_train_opt_count, "out", out, "test") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_comm *comm = lcc_comm_self(be);
  lcc_trainer t;
  int rc = lcc_trainer_init(&t, o, be, comm) || lcc_trainer_run(&t, NULL);
  if (rc) fprintf(stderr, "error: %s\n", lcc_last_error());
  if (!rc) {
    *first = t.loss_log[0];
    *last = t.loss_log[o->steps - 1];
    for (int s = 0; s < o->steps; s += 25) printf("  step %3d loss %.6f grad norm %.4f\n", s + 1, t.loss_log[s], t.grad_norm_log[s]);
  }
  lcc_trainer_free(&t);
  comm->destroy(comm);
  be->destroy(be);
  return rc;
}

int main(void) {
  const char *out1 = tmp_path("run1"), *out2 = tmp_path("run2");
  lcc_train_opts o;
  LCC_CHECK(lcc_opts_defaults(&o, lcc_train_opt_table, lcc_train_opt_count) == 0, "%s", lcc_last_error());
  const char *flags[][2] = {{"model", "configs/model/tiny.json"}, {"steps", "200"}, {"lr", "2e-3"}, {"warmup_ratio", "0.05"},
                            {"synthetic.fixed", "true"}, {"micro_batch", "2"}, {"freeze", ""},
                            {"resume", "never"}, {"plot", "false"}, {"zero", "0"}};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    LCC_CHECK(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, flags[i][0], flags[i][1], "test") == 0, "%s", lcc_last_error());
  double first, last, first2, last2;
  if (run(&o, out1, &first, &last) || run(&o, out2, &first2, &last2)) return 1;
  checkf(last < 0.05 * first, "loss %.6f -> %.6f after %d steps (%.2f%% of the first; must be < 5%%)", first, last,
         o.steps, 100.0 * last / first);
  check(first == first2 && last == last2, "a second run gives the same losses bit for bit");
  return test_finish("test_overfit");
}
