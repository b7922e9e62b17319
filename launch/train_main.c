// livecc-train: trains a Qwen2-VL model. For now a single process on the CPU backend, on synthetic
// LiveCC-shaped batches (or one batch file).
//   livecc-train [--config FILE] [--key=value ...]
#include <stdio.h>
#include <string.h>

#include "trainer.h"
#include "util.h"

static void usage(FILE *f) {
  fprintf(f, "usage: livecc-train [--config FILE] [--key=value ...]\n"
             "Keys (a config file holds the same keys as 'key = value' lines; flags win):\n");
  lcc_opts_usage(lcc_train_opt_table, lcc_train_opt_count, f);
}

static int parse_args(lcc_train_opts *o, int argc, char **argv) {
  if (lcc_opts_defaults(o, lcc_train_opt_table, lcc_train_opt_count)) return -1;
  for (int i = 1; i < argc; i++) {   // the config file first, so flags override it wherever they appear
    const char *file = NULL;
    if (!strcmp(argv[i], "--config") && i + 1 < argc) file = argv[i + 1];
    else if (!strncmp(argv[i], "--config=", 9)) file = argv[i] + 9;
    if (file && lcc_opts_load_file(o, lcc_train_opt_table, lcc_train_opt_count, file)) return -1;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config")) {
      i++;
      continue;
    }
    if (!strncmp(argv[i], "--config=", 9)) continue;
    if (strncmp(argv[i], "--", 2) != 0) return lcc_error("unexpected argument '%s' (flags look like --key=value)", argv[i]);
    char key[256];
    const char *eq = strchr(argv[i], '=');
    if (!eq) return lcc_error("flag '%s' needs a value: --key=value", argv[i]);
    snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i] - 2), argv[i] + 2);
    if (lcc_opts_set(o, lcc_train_opt_table, lcc_train_opt_count, key, eq + 1, "command line")) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  lcc_train_opts o;
  if (parse_args(&o, argc, argv)) {
    fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
    return 2;
  }
  printf("# livecc-train resolved configuration\n");
  lcc_opts_print(&o, lcc_train_opt_table, lcc_train_opt_count, stdout);
  lcc_trainer t;
  int rc = lcc_trainer_init(&t, &o);
  if (!rc) {
    const lcc_model *m = &t.model;
    printf("# model: %zu parameters, %zu trainable; backend %s\n", m->n_elems, m->n_grad, t.be->name);
    fflush(stdout);
    rc = lcc_trainer_run(&t, stdout);
  }
  if (rc) fprintf(stderr, "livecc-train: error: %s\n", lcc_last_error());
  lcc_trainer_free(&t);
  return rc ? 1 : 0;
}
