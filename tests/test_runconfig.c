// Run configuration: file + flags (flags win), typed values, and clear errors: unknown or mistyped keys
// name the closest known key, bad values name the key and the file line.
#include <string.h>

#include "testlib.h"
#include "trainer.h"
#include "util.h"

int main(void) {
  const char *path = tmp_path("run.conf");
  write_text(path, "# a comment\nsteps = 7   # trailing comment\nlr=3e-4\nfreeze = visual, model.embed_tokens\n\n"
                   "synthetic.fixed = yes\n");

  lcc_train_opts o;
  check(lcc_opts_defaults(&o, lcc_train_opt_table, lcc_train_opt_count) == 0, "defaults parse");
  check(o.steps == 100 && o.lr == 2e-5 && !strcmp(o.freeze, "visual") && o.clip == 0, "defaults: steps 100, lr 2e-5, freeze visual, no clipping");
  check(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path) == 0, "config file loads");
  check(o.steps == 7 && o.lr == 3e-4 && !strcmp(o.freeze, "visual, model.embed_tokens") && o.synth_fixed == 1, "file values applied");
  check(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "steps", "9", "command line") == 0 && o.steps == 9,
        "a flag overrides the file");

  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "grad_acum", "2", "command line"),
               "mistyped key", "grad_acum", "did you mean 'grad_accum'", NULL);
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "warmup", "2", "command line"),
               "unknown key", "warmup", "did you mean 'warmup_ratio'", NULL);
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "steps", "ten", "command line"),
               "non-integer", "steps", "integer", NULL);
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "lr", "1e-3x", "command line"), "bad number", "lr", NULL);
  expect_error(lcc_opts_set(&o, lcc_train_opt_table, lcc_train_opt_count, "synthetic.fixed", "maybe", "command line"),
               "bad boolean", "synthetic.fixed", NULL);
  write_text(path, "steps = 3\nlearning_rate = 1e-4\n");
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path), "unknown key in file",
               "run.conf:2", "learning_rate", NULL);
  write_text(path, "steps 3\n");
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, path), "line without '='", "run.conf:1", NULL);
  expect_error(lcc_opts_load_file(&o, lcc_train_opt_table, lcc_train_opt_count, "/nonexistent/run.conf"), "missing file",
               "/nonexistent/run.conf", NULL);
  return test_finish("test_runconfig");
}
