// Bad model inputs give one clear message naming the file and the tensor or key, never a crash:
// a missing tensor, a tensor of the wrong shape, an unexpected tensor, a truncated shard, a missing
// config.json, a shard named by the index that does not exist. Also: save -> load round trip (fp32 exact,
// bf16 within rounding), and sharding.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "testlib.h"
#include "util.h"

// Rewrites the single-file checkpoint src as dst with tensor `drop` left out and tensor `reshape` given a
// different (but byte-compatible) shape; `extra` adds an unknown tensor.
static void rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *extra) {
  lcc_st_file *f = lcc_st_open(src);
  LCC_CHECK(f, "%s", lcc_last_error());
  lcc_st_entry *e = lcc_calloc((size_t)f->n + 1, sizeof *e);
  int n = 0;
  for (int i = 0; i < f->n; i++) {
    const lcc_st_tensor *t = &f->tensors[i];
    if (drop && !strcmp(t->name, drop)) continue;
    e[n] = (lcc_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = lcc_st_data(f, t)};
    memcpy(e[n].shape, t->shape, sizeof t->shape);
    if (reshape && !strcmp(t->name, reshape)) e[n].ndim = 1, e[n].shape[0] = (int64_t)t->numel;   // flattened
    n++;
  }
  static const float junk[4] = {1, 2, 3, 4};
  if (extra) e[n++] = (lcc_st_entry){.name = extra, .dtype = LCC_F32, .ndim = 1, .shape = {4}, .data = junk};
  const char *meta[] = {"format", "pt"};
  LCC_CHECK(lcc_st_write(dst, e, n, meta, 1, 0) == 0, "%s", lcc_last_error());
  free(e);
  lcc_st_close(f);
}

int main(void) {
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "configs/model/tiny.json") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_model a, b;
  LCC_CHECK(lcc_model_create(&a, &cfg, be, "") == 0 && lcc_model_create(&b, &cfg, be, "") == 0, "%s", lcc_last_error());
  lcc_model_init_random(&a, 7);

  // round trips: fp32 sharded (small shards force several files) and bf16
  const char *dir = tmp_path("fp32");
  LCC_CHECK(lcc_model_save_hf(&a, dir, 0, 1 << 20) == 0, "%s", lcc_last_error());
  check(lcc_model_load_hf(&b, dir) == 0 && memcmp(a.master, b.master, a.n_elems * sizeof(float)) == 0,
        "fp32 sharded save -> load is exact");
  check(access(path_in(dir, "model-00004-of-00004.safetensors"), F_OK) == 0,
        "1 MiB shards split the 3.6 MB tiny model into 4 files");
  dir = tmp_path("bf16");
  LCC_CHECK(lcc_model_save_hf(&a, dir, 1, (size_t)1 << 30) == 0, "%s", lcc_last_error());
  LCC_CHECK(lcc_model_load_hf(&b, dir) == 0, "%s", lcc_last_error());
  double worst = 0;
  for (size_t i = 0; i < a.n_elems; i++) {
    double r = fabs(a.master[i] - b.master[i]) / (fabs(a.master[i]) + 1e-30);
    if (a.master[i] != 0 && r > worst) worst = r;
  }
  printf("     bf16 round trip: worst relative error %.3e\n", worst);
  check(worst <= 1.0 / 256, "bf16 save -> load within bf16 rounding (2^-8)");

  // one-file checkpoint to break in several ways
  dir = tmp_path("one");
  LCC_CHECK(lcc_model_save_hf(&a, dir, 0, (size_t)1 << 30) == 0, "%s", lcc_last_error());
  char good[4200];
  snprintf(good, sizeof good, "%s/model-00001-of-00001.safetensors", dir);

  const char *path = tmp_path("missing.safetensors");
  rewrite(good, path, "model.layers.1.mlp.up_proj.weight", NULL, NULL);
  expect_error(lcc_model_load_hf(&b, path), "missing tensor", "missing.safetensors", "model.layers.1.mlp.up_proj.weight",
               NULL);

  path = tmp_path("shape.safetensors");
  rewrite(good, path, NULL, "model.layers.0.self_attn.k_proj.weight", NULL);
  expect_error(lcc_model_load_hf(&b, path), "wrong shape", "shape.safetensors", "model.layers.0.self_attn.k_proj.weight",
               NULL);

  path = tmp_path("extra.safetensors");
  rewrite(good, path, NULL, NULL, "model.layers.9.mlp.up_proj.weight");
  expect_error(lcc_model_load_hf(&b, path), "unexpected tensor", "extra.safetensors", "model.layers.9.mlp.up_proj.weight",
               NULL);

  path = tmp_path("truncated.safetensors");
  size_t len;
  char *bytes = lcc_read_file(good, &len);
  LCC_CHECK(bytes, "%s", lcc_last_error());
  write_file(path, bytes, len - 100);
  free(bytes);
  expect_error(lcc_model_load_hf(&b, path), "truncated shard", "truncated.safetensors", NULL);

  path = tmp_path("nowhere");
  expect_error(lcc_model_load_hf(&b, path), "no such path", "nowhere", NULL);
  expect_error(lcc_config_load(&cfg, path), "missing config.json", "nowhere", NULL);

  path = tmp_path("badindex");
  mkdir(path, 0755);
  write_text(path_in(path, "model.safetensors.index.json"),
             "{\"metadata\": {}, \"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
  expect_error(lcc_model_load_hf(&b, path), "index names a missing shard", "model-00001-of-00002.safetensors", NULL);

  lcc_model_destroy(&a);
  lcc_model_destroy(&b);
  be->destroy(be);
  return test_finish("test_load_errors");
}
