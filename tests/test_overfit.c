// Overfit: 200 AdamW steps on one fixed tiny batch must bring the loss under 5% of its first value.
// Also checks that the run is reproducible bit for bit (same seed, same losses).
#include <stdio.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

static int run(lcc_train_opts *o, double *first, double *last) {
  lcc_trainer t;
  if (lcc_trainer_init(&t, o) || lcc_trainer_run(&t, NULL)) {
    fprintf(stderr, "error: %s\n", lcc_last_error());
    return -1;
  }
  *first = t.loss_log[0];
  *last = t.loss_log[o->steps - 1];
  for (int s = 0; s < o->steps; s += 25) printf("  step %3d loss %.6f grad norm %.4f\n", s + 1, t.loss_log[s], t.grad_norm_log[s]);
  lcc_trainer_free(&t);
  return 0;
}

int main(void) {
  lcc_train_opts o;
  LCC_CHECK(lcc_opts_defaults(&o, lcc_train_opt_table, lcc_train_opt_count) == 0, "%s", lcc_last_error());
  const char *flags[][2] = {{"model", "configs/model/tiny.json"}, {"steps", "200"}, {"lr", "2e-3"}, {"warmup_ratio", "0.05"},
                            {"synthetic.fixed", "true"}, {"micro_batch", "2"}, {"freeze", ""}};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    LCC_CHECK(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, flags[i][0], flags[i][1], "test") == 0, "%s", lcc_last_error());
  double first, last, first2, last2;
  if (run(&o, &first, &last) || run(&o, &first2, &last2)) return 1;
  int ok = last < 0.05 * first;
  printf("%s: loss %.6f -> %.6f after %d steps (%.2f%% of the first; must be < 5%%)\n", ok ? "ok" : "FAIL", first, last,
         o.steps, 100.0 * last / first);
  int same = first == first2 && last == last2;
  printf("%s: a second run gives the same losses bit for bit\n", same ? "ok" : "FAIL");
  return ok && same ? 0 : 1;
}
