// lcc-ckpt-compare A B [tolerance]: compares the model weights of two checkpoints (or HF folders):
// prints ||A - B|| / ||A|| over every tensor and exits 0 when it is at most the tolerance (default 0:
// bit-identical), 1 when it is above, 2 on error.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "util.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: lcc-ckpt-compare A B [tolerance]\n");
    return 2;
  }
  const double tol = argc > 3 ? atof(argv[3]) : 0.0;
  lcc_config cfg;
  if (lcc_config_load(&cfg, argv[1])) {
    fprintf(stderr, "lcc-ckpt-compare: %s\n", lcc_last_error());
    return 2;
  }
  lcc_backend *be = lcc_cpu_backend(1);
  lcc_model a, b;
  if (lcc_model_create(&a, &cfg, be, "") || lcc_model_create(&b, &cfg, be, "") || lcc_model_load_hf(&a, argv[1]) ||
      lcc_model_load_hf(&b, argv[2])) {
    fprintf(stderr, "lcc-ckpt-compare: %s\n", lcc_last_error());
    return 2;
  }
  double num = 0, den = 0;
  size_t differ = 0;
  for (size_t i = 0; i < a.n_elems; i++) {
    double d = (double)a.master[i] - b.master[i];
    num += d * d;
    den += (double)a.master[i] * a.master[i];
    differ += a.master[i] != b.master[i];
  }
  const double rel = sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
  printf("relative L2 difference %.3e (%zu of %zu values differ); tolerance %.1e: %s\n", rel, differ, a.n_elems, tol,
         rel <= tol ? "ok" : "FAIL");
  lcc_model_destroy(&a);
  lcc_model_destroy(&b);
  be->destroy(be);
  return rel <= tol ? 0 : 1;
}
