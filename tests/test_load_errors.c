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
#include "util.h"

static int failures = 0;
static char tmp[256];

static void expect_error(int rc, const char *what, const char *must1, const char *must2) {
  const char *msg = lcc_last_error();
  int ok = rc != 0 && strstr(msg, must1) && (!must2 || strstr(msg, must2));
  failures += !ok;
  printf("%-4s %-28s -> %s\n", ok ? "ok" : "FAIL", what, rc ? msg : "(no error)");
}

static void check(int cond, const char *what) {
  failures += !cond;
  printf("%-4s %s\n", cond ? "ok" : "FAIL", what);
}

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

static void copy_file(const char *src, const char *dst, long keep_bytes) {
  size_t len;
  char *buf = lcc_read_file(src, &len);
  LCC_CHECK(buf, "%s", lcc_last_error());
  FILE *f = fopen(dst, "wb");
  LCC_CHECK(f, "cannot write %s", dst);
  fwrite(buf, 1, keep_bytes < 0 ? len : (size_t)keep_bytes, f);
  fclose(f);
  free(buf);
}

int main(void) {
  const char *base = getenv("TEST_TMPDIR");
  snprintf(tmp, sizeof tmp, "%s", base ? base : "/tmp/lcc-test-load");
  mkdir(tmp, 0755);
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "configs/model/tiny.json") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_model a, b;
  LCC_CHECK(lcc_model_create(&a, &cfg, be, "") == 0 && lcc_model_create(&b, &cfg, be, "") == 0, "%s", lcc_last_error());
  lcc_model_init_random(&a, 7);

  // round trips: fp32 sharded (small shards force several files) and bf16
  char dir[512], path[600], good[600];
  snprintf(dir, sizeof dir, "%s/fp32", tmp);
  LCC_CHECK(lcc_model_save_hf(&a, dir, 0, 1 << 20) == 0, "%s", lcc_last_error());
  check(lcc_model_load_hf(&b, dir) == 0 && memcmp(a.master, b.master, a.n_elems * sizeof(float)) == 0,
        "fp32 sharded save -> load is exact");
  snprintf(path, sizeof path, "%s/model-00004-of-00004.safetensors", dir);
  check(access(path, F_OK) == 0, "1 MiB shards split the 3.6 MB tiny model into 4 files");
  snprintf(dir, sizeof dir, "%s/bf16", tmp);
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
  snprintf(dir, sizeof dir, "%s/one", tmp);
  LCC_CHECK(lcc_model_save_hf(&a, dir, 0, (size_t)1 << 30) == 0, "%s", lcc_last_error());
  snprintf(good, sizeof good, "%s/model-00001-of-00001.safetensors", dir);

  snprintf(path, sizeof path, "%s/missing.safetensors", tmp);
  rewrite(good, path, "model.layers.1.mlp.up_proj.weight", NULL, NULL);
  expect_error(lcc_model_load_hf(&b, path), "missing tensor", "missing.safetensors", "model.layers.1.mlp.up_proj.weight");

  snprintf(path, sizeof path, "%s/shape.safetensors", tmp);
  rewrite(good, path, NULL, "model.layers.0.self_attn.k_proj.weight", NULL);
  expect_error(lcc_model_load_hf(&b, path), "wrong shape", "shape.safetensors", "model.layers.0.self_attn.k_proj.weight");

  snprintf(path, sizeof path, "%s/extra.safetensors", tmp);
  rewrite(good, path, NULL, NULL, "model.layers.9.mlp.up_proj.weight");
  expect_error(lcc_model_load_hf(&b, path), "unexpected tensor", "extra.safetensors", "model.layers.9.mlp.up_proj.weight");

  snprintf(path, sizeof path, "%s/truncated.safetensors", tmp);
  struct stat st;
  stat(good, &st);
  copy_file(good, path, (long)st.st_size - 100);
  expect_error(lcc_model_load_hf(&b, path), "truncated shard", "truncated.safetensors", NULL);

  snprintf(path, sizeof path, "%s/nowhere", tmp);
  expect_error(lcc_model_load_hf(&b, path), "no such path", "nowhere", NULL);
  expect_error(lcc_config_load(&cfg, path), "missing config.json", "nowhere", NULL);

  snprintf(path, sizeof path, "%s/badindex", tmp);
  mkdir(path, 0755);
  char index[700];
  snprintf(index, sizeof index, "%s/model.safetensors.index.json", path);
  FILE *f = fopen(index, "w");
  fprintf(f, "{\"metadata\": {}, \"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
  fclose(f);
  expect_error(lcc_model_load_hf(&b, path), "index names a missing shard", "model-00001-of-00002.safetensors", NULL);

  lcc_model_destroy(&a);
  lcc_model_destroy(&b);
  be->destroy(be);
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
