// Run configuration: file + flags (flags win), typed values, and clear errors: unknown or mistyped keys
// name the closest known key, bad values name the key and the file line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

static int failures = 0;

static void check(int cond, const char *what) {
  failures += !cond;
  printf("%-4s %s\n", cond ? "ok" : "FAIL", what);
}

static void expect_error(int rc, const char *what, const char *must1, const char *must2) {
  const char *msg = lcc_last_error();
  int ok = rc != 0 && strstr(msg, must1) && (!must2 || strstr(msg, must2));
  failures += !ok;
  printf("%-4s %-26s -> %s\n", ok ? "ok" : "FAIL", what, rc ? msg : "(no error)");
}

int main(void) {
  const char *base = getenv("TEST_TMPDIR");
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s", base ? base : "/tmp");
  snprintf(path, sizeof path, "%s/run.conf", dir);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  LCC_CHECK(system(cmd) == 0, "mkdir");
  FILE *f = fopen(path, "w");
  fprintf(f, "# a comment\nsteps = 7   # trailing comment\nlr=3e-4\nfreeze = visual, model.embed_tokens\n\nsynthetic.fixed = yes\n");
  fclose(f);

  lcc_train_opts o;
  check(lcc_opts_defaults(&o, lcc_train_opt_table, lcc_train_opt_count) == 0, "defaults parse");
  check(o.steps == 100 && o.lr == 2e-5 && !strcmp(o.freeze, "visual") && o.clip == 0, "defaults: steps 100, lr 2e-5, freeze visual, no clipping");
  check(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path) == 0, "config file loads");
  check(o.steps == 7 && o.lr == 3e-4 && !strcmp(o.freeze, "visual, model.embed_tokens") && o.synth_fixed == 1, "file values applied");
  check(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "steps", "9", "command line") == 0 && o.steps == 9,
        "a flag overrides the file");

  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "grad_acum", "2", "command line"),
               "mistyped key", "grad_acum", "did you mean 'grad_accum'");
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "warmup", "2", "command line"),
               "unknown key", "warmup", "did you mean 'warmup_ratio'");
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "steps", "ten", "command line"),
               "non-integer", "steps", "integer");
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "lr", "1e-3x", "command line"), "bad number", "lr", NULL);
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "synthetic.fixed", "maybe", "command line"),
               "bad boolean", "synthetic.fixed", NULL);
  f = fopen(path, "w");
  fprintf(f, "steps = 3\nlearning_rate = 1e-4\n");
  fclose(f);
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path), "unknown key in file",
               "run.conf:2", "learning_rate");
  f = fopen(path, "w");
  fprintf(f, "steps 3\n");
  fclose(f);
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path), "line without '='", "run.conf:1", NULL);
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, "/nonexistent/run.conf"), "missing file",
               "/nonexistent/run.conf", NULL);
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
