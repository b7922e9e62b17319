// Shards against the model and tokenizer of a run (lcc_loader_opts.expect): each attribute the samples'
// meaning depends on (patch, merge and temporal sizes, image mean and std, vocabulary, tokenizer hash) is
// compared when the loader opens, and a difference is an error naming both values; later shards must agree
// with the first; shards written before vocab_size was kept still open.
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"
#include "shard.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

static const char *dataset;   // 9 samples in shards of 4 and 5, made with fx_meta

// The expectation that matches fx_meta: Qwen2-VL's geometry, CLIP normalization, its vocabulary and hash.
static lcc_data_expect matching(void) {
  lcc_data_expect e = {.model = "model.json", .tokenizer = "tok.json", .patch_size = 14, .merge_size = 2,
                       .temporal_patch_size = 2, .vocab_size = 151936, .tokenizer_hash = 0x0123456789abcdefull};
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_JPEG);
  memcpy(e.image_mean, m.image_mean, sizeof e.image_mean);
  memcpy(e.image_std, m.image_std, sizeof e.image_std);
  return e;
}

static lcc_loader *open_skipping(const char *dir, const lcc_data_expect *e, int skip_corrupt) {
  lcc_loader_opts o = {.data = dir, .seed = 1, .shuffle = 0, .world_size = 1, .micro_batch = 3, .grad_accum = 1,
                       .threads = 1, .prefetch = 1, .skip_corrupt = skip_corrupt, .max_open_shards = 2, .expect = e};
  return lcc_loader_open(&o, 0);
}

static lcc_loader *open_with(const char *dir, const lcc_data_expect *e) { return open_skipping(dir, e, 1); }

// Opening with e must fail naming the shard and both values (each a fragment).
static void refused(const lcc_data_expect *e, const char *what, const char *have, const char *want) {
  lcc_loader *l = open_with(dataset, e);
  checkf(!l && error_has("shard-00000.h5", have, want, "model.json", NULL), "%s: refused naming both values", what);
  lcc_loader_close(l);
}

// Reads the epoch's 3 micro-batches; the number of samples read, or -1.
static int read_all(lcc_loader *l) {
  int n = 0;
  for (int k = 0; k < 3; k++) {
    lcc_owned_batch ob;
    if (lcc_loader_next(l, &ob)) return -1;
    n += ob.b.n_samples;
    lcc_batch_free(&ob);
  }
  return n;
}

// Sets the manifest entry of shard i of dir to the file's bytes now (from: a file copied over it first).
static void refresh_shard(const char *dir, int i, const char *from) {
  lcc_manifest m;
  LCC_CHECK(!lcc_manifest_load(dir, &m), "%s", lcc_last_error());
  char to[4300], cmd[9000];
  snprintf(to, sizeof to, "%s/%s", dir, m.shards[i].file);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
  LCC_CHECK(!from || system(cmd) == 0, "failed: %s", cmd);
  LCC_CHECK(!lcc_file_crc64(to, &m.shards[i].checksum, &m.shards[i].bytes), "%s", lcc_last_error());
  LCC_CHECK(!lcc_manifest_write(&m), "%s", lcc_last_error());
  lcc_manifest_free(&m);
}

static void copy_dir(const char *from, const char *to) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
  LCC_CHECK(system(cmd) == 0, "failed: %s", cmd);
}

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  const char *base = test_fresh_dir("expect");
  dataset = path_in(base, "data");
  mkdir(dataset, 0755);
  lcc_shard_meta meta;
  fx_meta(&meta, LCC_CODEC_JPEG);
  const int counts[2] = {4, 5};
  LCC_CHECK(!fx_dataset(dataset, counts, 2, &meta, 2), "%s", lcc_last_error());

  const lcc_data_expect ok = matching();
  lcc_loader *l = open_with(dataset, &ok);
  check(l && read_all(l) == 9, "the model the shards were made for reads every sample");
  lcc_loader_close(l);
  lcc_data_expect e = ok;
  e.tokenizer_hash = 0;
  l = open_with(dataset, &e);
  check(l != NULL, "no tokenizer given: the hash is not compared");
  lcc_loader_close(l);

  e = ok, e.patch_size = 8;
  refused(&e, "patch size", "patch_size 14", "has 8");
  e = ok, e.merge_size = 1;
  refused(&e, "merge size", "spatial_merge_size 2", "has 1");
  e = ok, e.temporal_patch_size = 1;
  refused(&e, "temporal patch size", "temporal_patch_size 2", "has 1");
  e = ok, e.image_mean[1] = 0.5f;
  refused(&e, "image mean", "image_mean (0.48145467, 0.45782751, 0.40821072)", "expects (0.48145467, 0.5, 0.40821072)");
  e = ok, e.image_std[2] = 1.0f;
  refused(&e, "image std", "image_std (", ", 1)");
  e = ok, e.vocab_size = 1024;
  refused(&e, "vocabulary", "vocabulary of 151657 ids", "vocab_size 1024");
  e = ok, e.tokenizer_hash = 0xfeedull;
  l = open_with(dataset, &e);
  checkf(!l && error_has("tokenizer hash is 0123456789abcdef", "tok.json has 000000000000feed", NULL),
         "tokenizer hash: refused naming both");
  lcc_loader_close(l);

  // the first shard gone: the comparison is made on the next one, at open still
  const char *gone = path_in(base, "gone");
  copy_dir(dataset, gone);
  remove(path_in(gone, "shard-00000.h5"));
  e = ok, e.patch_size = 8;
  l = open_with(gone, &e);
  check(!l && error_has("shard-00001.h5", "patch_size 14", "has 8", NULL), "first shard missing: the next one is compared");
  lcc_loader_close(l);

  // a later shard normalized otherwise than the first: treated as damaged, its samples replaced
  const char *other = path_in(base, "other");
  lcc_shard_meta m2 = meta;
  m2.image_std[0] = 0.5f;
  mkdir(other, 0755);
  LCC_CHECK(!fx_dataset(other, counts, 2, &m2, 2), "%s", lcc_last_error());
  const char *mixed = path_in(base, "mixed");
  copy_dir(dataset, mixed);
  refresh_shard(mixed, 1, path_in(other, "shard-00001.h5"));
  l = open_skipping(mixed, &ok, 0);
  check(l && read_all(l) == -1 && error_has("shard-00001.h5", "image_mean/image_std differ from other shards'", NULL),
        "a shard unlike the first: named as damaged");
  lcc_loader_close(l);
  l = open_with(mixed, &ok);
  check(l && read_all(l) == 9 && lcc_loader_skipped(l) > 0, "a shard unlike the first: its samples replaced (skip_corrupt)");
  lcc_loader_close(l);

  // shards written before vocab_size was an attribute: still read, the vocabulary not compared
  const char *old = path_in(base, "old");
  copy_dir(dataset, old);
  for (int i = 0; i < 2; i++) {
    char p[4300];
    snprintf(p, sizeof p, "%s/shard-%05d.h5", old, i);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    LCC_CHECK(f >= 0 && H5Adelete(f, "vocab_size") >= 0 && H5Fclose(f) >= 0, "cannot edit %s", p);
    refresh_shard(old, i, NULL);
  }
  e = ok, e.vocab_size = 1024;
  l = open_with(old, &e);
  check(l && read_all(l) == 9, "shards without vocab_size: read, the vocabulary not compared");
  lcc_loader_close(l);
  return test_finish("test_loader_expect");
}
