// Damaged inputs give one clear message naming the file (and the sample or key), never a crash: missing,
// foreign, truncated and inconsistent shards; bad samples refused by the writer; malformed manifests; and in
// the loader a missing shard, a truncated shard and a corrupt JPEG frame, with skip_corrupt counting what it
// skips and replacing each by the sample at the next stream position that reads.
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "model.h"
#include "shard.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

static const char *base;   // $TEST_TMPDIR/errors
static char good[4200];    // a valid raw shard of 7 samples

static const char *path_of(const char *name) { return path_in(base, name); }

static void run(const char *cmd) { LCC_CHECK(system(cmd) == 0, "failed: %s", cmd); }

static void copy(const char *from, const char *to) {
  char cmd[8600];
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
  run(cmd);
}

// Opening `path` fails with a message naming it and containing `want`.
static void open_fails(const char *path, const char *want) {
  lcc_shard *s = lcc_shard_open(path);
  CHECK(!s && error_has(path, want, NULL));
  lcc_shard_close(s);
}

// ---- damaged copies of the good shard, edited through HDF5 ----

static hid_t edit(const char *name) {
  copy(good, path_of(name));
  hid_t f = H5Fopen(path_of(name), H5F_ACC_RDWR, H5P_DEFAULT);
  LCC_CHECK(f >= 0, "cannot open %s", name);
  return f;
}

static void set_attr_int(hid_t f, const char *name, int64_t v) {
  LCC_CHECK(H5Adelete(f, name) >= 0, "H5Adelete");
  hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT);
  LCC_CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0, "H5Awrite");
  H5Aclose(a), H5Sclose(sp);
}

// Overwrites element `row` (of `cols` columns, column col) of a dataset with v.
static void set_int(hid_t f, const char *ds_name, int cols, hsize_t row, int col, int64_t v) {
  hid_t ds = H5Dopen2(f, ds_name, H5P_DEFAULT), fs = H5Dget_space(ds);
  hsize_t start[2] = {row, (hsize_t)col}, count[2] = {1, 1};
  hid_t ms = H5Screate_simple(cols ? 2 : 1, count, NULL);
  LCC_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
            H5Dwrite(ds, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &v) >= 0, "H5Dwrite %s", ds_name);
  H5Sclose(ms), H5Sclose(fs), H5Dclose(ds);
}

static void shard_errors(void) {
  open_fails(path_of("absent.h5"), "No such file or directory");
  write_text(path_of("text.h5"), "this is not HDF5\n");
  open_fails(path_of("text.h5"), "not a readable HDF5 file (truncated?)");

  struct stat st;
  stat(good, &st);
  copy(good, path_of("truncated.h5"));
  LCC_CHECK(truncate(path_of("truncated.h5"), st.st_size / 2) == 0, "truncate");
  open_fails(path_of("truncated.h5"), "not a readable HDF5 file (truncated?)");

  hid_t h = H5Fcreate(path_of("foreign.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  open_fails(path_of("foreign.h5"), "not a livecc shard (no 'format' attribute)");

  h = edit("format.h5");
  set_attr_int(h, "format", 7);
  H5Fclose(h);
  open_fails(path_of("format.h5"), "attribute 'format' must be one string");

  h = edit("version.h5");
  set_attr_int(h, "version", 2);
  H5Fclose(h);
  open_fails(path_of("version.h5"), "shard version 2 is not supported");

  h = edit("count.h5");
  set_attr_int(h, "n_samples", 8);
  H5Fclose(h);
  open_fails(path_of("count.h5"), "/source has 7 entries, n_samples is 8");

  h = edit("nomask.h5");
  LCC_CHECK(H5Ldelete(h, "loss_mask", H5P_DEFAULT) >= 0, "H5Ldelete");
  H5Fclose(h);
  open_fails(path_of("nomask.h5"), "missing dataset /loss_mask");

  h = edit("lastoff.h5");
  set_int(h, "token_offset", 0, 7, 0, 5);
  H5Fclose(h);
  open_fails(path_of("lastoff.h5"), "the last entry of /token_offset is 5");

  // Damage found only when the sample is read: offsets out of order, an item of unknown kind.
  h = edit("order.h5");
  set_int(h, "token_offset", 0, 4, 0, 1);
  set_int(h, "items", 5, 0, 0, 5);
  H5Fclose(h);
  lcc_shard *s = lcc_shard_open(path_of("order.h5"));
  CHECK(s);
  if (s) {
    lcc_sample x;
    CHECK(lcc_shard_read(s, 3, &x) == -1 && error_has(path_of("order.h5"), ": sample 3: /token_offset[4] = 1 is out of order", NULL));
    CHECK(lcc_shard_read(s, 0, &x) == -1 && error_has(": sample 0: item 0: unknown kind 5", NULL));
    CHECK(lcc_shard_read(s, 1, &x) == 0 && x.n_tokens > 0);   // the others still read
    lcc_sample_free(&x);
    lcc_shard_close(s);
  }
}

static void writer_errors(void) {
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_RAW);
  m.merge_size = 0;
  CHECK(!lcc_shard_create(path_of("w.h5"), &m) && error_has(path_of("w.h5"), "merge_size 0", NULL));
  fx_meta(&m, LCC_CODEC_RAW);
  lcc_shard_writer *w = lcc_shard_create(path_of("w.h5"), &m);
  lcc_sample s;
  fx_sample(&s, &m, 0, 2);
  CHECK(lcc_shard_add(w, &s) == 0);
  s.items[1].first_pad = s.n_tokens - 1;   // its pads would run past the end
  CHECK(lcc_shard_add(w, &s) == -1 && error_has(path_of("w.h5"), ": sample 1: item 1: pad tokens", NULL));
  s.items[1].first_pad = s.items[0].first_pad;   // overlaps the image's pads
  CHECK(lcc_shard_add(w, &s) == -1 && error_has("sample 1: item 1: pad tokens", NULL));
  lcc_sample_free(&s);
  fx_sample(&s, &m, 1, 2);   // a video chunk of 4 frames: drop one
  s.n_frames--;
  CHECK(lcc_shard_add(w, &s) == -1 && error_has("sample 1: item 0 needs frames up to 4, the sample has 3", NULL));
  lcc_sample_free(&s);
  CHECK(lcc_shard_finish(w) == 0);
  lcc_shard *r = lcc_shard_open(path_of("w.h5"));
  CHECK(r && lcc_shard_count(r) == 1);   // the refused samples left nothing behind
  lcc_shard_close(r);
}

// ---- manifests ----

// Writes text as <base>/badmanifest/manifest.json; returns the directory.
static const char *put_manifest(const char *text) {
  const char *dir = path_of("badmanifest");
  mkdir(dir, 0755);
  write_text(path_in(dir, "manifest.json"), text);
  return dir;
}

static void manifest_fails(const char *text, const char *want) {
  lcc_manifest m;
  CHECK(lcc_manifest_load(put_manifest(text), &m) == -1 && error_has("badmanifest/manifest.json: ", want, NULL));
}

static void manifest_errors(void) {
  lcc_manifest m;
  CHECK(lcc_manifest_load(path_of("nowhere"), &m) == -1 && error_has("nowhere", "No such file or directory", NULL));
  manifest_fails("{\"format\": ", "at line 1");
  manifest_fails("[]", "must be a JSON object");
  manifest_fails("{\"format\": \"other\"}", "key 'format'");
  manifest_fails("{\"format\": \"livecc-manifest\", \"version\": 2}", "key 'version': 2 is not supported");
  manifest_fails("{\"format\": \"livecc-manifest\", \"version\": 1, \"tokenizer_hash\": \"xyz\"}", "key 'tokenizer_hash'");
  manifest_fails("{\"format\": \"livecc-manifest\", \"version\": 1, \"tokenizer_hash\": \"ab\", \"total_samples\": 1}",
                 "key 'shards': must be an array");
  const char *head = "{\"format\": \"livecc-manifest\", \"version\": 1, \"tokenizer_hash\": \"ab\", \"total_samples\": 3, ";
  char text[1024];
  snprintf(text, sizeof text, "%s\"shards\": [{\"file\": \"a.h5\", \"samples\": 1, \"bytes\": 1, \"crc64\": \"0000000000000000\"}, "
           "{\"file\": \"b.h5\", \"samples\": -2, \"bytes\": 1, \"crc64\": \"0000000000000000\"}]}", head);
  manifest_fails(text, "key 'shards[1].samples'");
  snprintf(text, sizeof text, "%s\"shards\": [{\"file\": \"a.h5\", \"samples\": 1, \"bytes\": 1, \"crc64\": \"00\"}]}", head);
  manifest_fails(text, "key 'shards[0].crc64'");
  snprintf(text, sizeof text, "%s\"shards\": [{\"file\": \"/abs.h5\", \"samples\": 1, \"bytes\": 1, \"crc64\": \"00\"}]}", head);
  manifest_fails(text, "key 'shards[0].file'");
  snprintf(text, sizeof text, "%s\"shards\": [{\"file\": \"a.h5\", \"samples\": 2, \"bytes\": 1, \"crc64\": \"0123456789abcdef\"}]}", head);
  manifest_fails(text, "key 'total_samples': 3, but the shards hold 2 samples");
  const char *empty = put_manifest("{\"format\": \"livecc-manifest\", \"version\": 1, \"tokenizer_hash\": \"ab\", "
                                   "\"total_samples\": 0, \"shards\": []}");
  lcc_loader_opts o = {.data = empty, .world_size = 1, .micro_batch = 1, .grad_accum = 1, .max_open_shards = 1};
  CHECK(!lcc_loader_open(&o, 0) && error_has("manifest.json: the dataset is empty", NULL));
  o.rank = 1;
  CHECK(!lcc_loader_open(&o, 0) && error_has("rank 1 is outside world size 1", NULL));
}

// ---- the loader on damaged datasets: 15 JPEG samples in shards of 5, 6, 4, read in order 3 at a time ----

static lcc_loader *open_dataset(const char *dir, int skip) {
  lcc_loader_opts o = {.data = dir, .seed = 1, .shuffle = 0, .world_size = 1, .micro_batch = 3, .grad_accum = 1,
                       .threads = 2, .prefetch = 2, .skip_corrupt = skip, .max_open_shards = 2};
  lcc_loader *l = lcc_loader_open(&o, 0);
  LCC_CHECK(l, "%s", lcc_last_error());
  return l;
}

// Reads the 5 micro-batches of an epoch; returns the number of samples delivered, or -1 at the first error
// (the micro-batch number in *at). Each sample's first token is its tag, its global index: it must be the
// sample id the batch reports. ids (may be NULL): "i,i,i|..." of the samples delivered.
static int read_epoch_ids(lcc_loader *l, int *at, char *ids) {
  int samples = 0;
  if (ids) ids[0] = 0;
  for (int k = 0; k < 5; k++) {
    lcc_owned_batch ob;
    if (lcc_loader_next(l, &ob)) {
      *at = k;
      return -1;
    }
    for (int s = 0; s < ob.b.n_samples; s++) {
      CHECK(ob.sample_ids && ob.ids[ob.sample_start[s]] == ob.sample_ids[s]);
      if (ids) sprintf(ids + strlen(ids), "%s%lld", s ? "," : k ? "|" : "", (long long)ob.sample_ids[s]);
    }
    samples += ob.b.n_samples;
    lcc_batch_free(&ob);
  }
  return samples;
}

static int read_epoch(lcc_loader *l, int *at) { return read_epoch_ids(l, at, NULL); }

// Sets shard `i`'s byte count in the dataset's manifest to the file's size.
static void refresh_manifest(const char *dir, int i) {
  lcc_manifest m;
  LCC_CHECK(!lcc_manifest_load(dir, &m), "%s", lcc_last_error());
  char p[4300];
  snprintf(p, sizeof p, "%s/%s", dir, m.shards[i].file);
  struct stat st;
  stat(p, &st);
  m.shards[i].bytes = st.st_size;
  LCC_CHECK(!lcc_manifest_write(&m), "%s", lcc_last_error());
  lcc_manifest_free(&m);
}

// Zeroes the bytes of the first frame of sample `tag` inside the shard file (JPEG frames are stored as is).
static void damage_frame(const char *shard, int64_t tag) {
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_JPEG);
  lcc_sample s;
  fx_sample(&s, &m, tag, 2);
  size_t n;
  char *bytes = lcc_read_file(shard, &n);
  char *at = memmem(bytes, n, s.frame_data, (size_t)s.frame_off[1]);
  LCC_CHECK(at, "frame not found in %s", shard);
  memset(at, 0, (size_t)s.frame_off[1]);
  write_file(shard, bytes, n);
  free(bytes);
  lcc_sample_free(&s);
}

static void loader_errors(void) {
  const char *dataset = path_of("dataset");
  mkdir(dataset, 0755);
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_JPEG);
  const int counts[3] = {5, 6, 4};
  LCC_CHECK(!fx_dataset(dataset, counts, 3, &m, 2), "%s", lcc_last_error());
  int at = -1;
  lcc_loader *l = open_dataset(dataset, 0);
  CHECK(read_epoch(l, &at) == 15);
  lcc_loader_close(l);

  char ids[512];
  // A missing shard: an error naming it and the sample; with skip_corrupt each of its 4 samples is replaced by
  // the next position that reads (positions 11..14 fail: 15, the next epoch's first, is sample 0).
  const char *missing = path_of("missing");
  copy(dataset, missing);
  char shard[4300];
  snprintf(shard, sizeof shard, "%s/shard-00002.h5", missing);
  unlink(shard);
  l = open_dataset(missing, 0);
  CHECK(read_epoch(l, &at) == -1 && at == 3 && error_has(shard, "No such file or directory", "manifest.json", "(reading sample 0)", NULL));
  lcc_owned_batch ob;
  CHECK(lcc_loader_next(l, &ob) == -1 && error_has(shard, NULL));   // a failed loader keeps failing
  lcc_loader_close(l);
  l = open_dataset(missing, 1);
  CHECK(read_epoch_ids(l, &at, ids) == 15 && lcc_loader_skipped(l) == 4 + 3 + 2 + 1);
  CHECKF(!strcmp(ids, "0,1,2|3,4,5|6,7,8|9,10,0|0,0,0"), "replacements: %s", ids);
  lcc_loader_close(l);

  // A truncated shard: the manifest's size catches it; with the size updated, HDF5 refuses the file.
  const char *cut = path_of("truncated");
  copy(dataset, cut);
  snprintf(shard, sizeof shard, "%s/shard-00001.h5", cut);
  LCC_CHECK(truncate(shard, 3000) == 0, "truncate");
  l = open_dataset(cut, 0);
  CHECK(read_epoch(l, &at) == -1 && at == 1 && error_has(shard, "3000 bytes, but", "(truncated or rewritten?", "livecc-prep --verify", NULL));
  lcc_loader_close(l);
  refresh_manifest(cut, 1);
  l = open_dataset(cut, 0);
  CHECK(read_epoch(l, &at) == -1 && at == 1 && error_has(shard, "not a readable HDF5 file (truncated?)", "(reading sample 0)", NULL));
  lcc_loader_close(l);
  l = open_dataset(cut, 1);
  CHECK(read_epoch_ids(l, &at, ids) == 15 && lcc_loader_skipped(l) == 6 + 5 + 4 + 3 + 2 + 1);
  CHECKF(!strcmp(ids, "0,1,2|3,4,11|11,11,11|11,11,11|12,13,14"), "replacements: %s", ids);
  lcc_loader_close(l);

  // A corrupt JPEG frame in sample 6 (shard 1, index 1; its first item is an image).
  const char *bad = path_of("corrupt");
  copy(dataset, bad);
  snprintf(shard, sizeof shard, "%s/shard-00001.h5", bad);
  damage_frame(shard, 6);
  l = open_dataset(bad, 0);
  CHECK(read_epoch(l, &at) == -1 && at == 2 && error_has(shard, ": sample 1: item 0 frame 0: ", NULL));
  lcc_loader_close(l);
  l = open_dataset(bad, 1);
  CHECK(read_epoch_ids(l, &at, ids) == 15 && lcc_loader_skipped(l) == 1);
  CHECKF(!strcmp(ids, "0,1,2|3,4,5|7,7,8|9,10,11|12,13,14"), "replacements: %s", ids);
  lcc_loader_close(l);
}

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  base = test_fresh_dir("errors");
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_RAW);
  snprintf(good, sizeof good, "%s/good.h5", base);
  lcc_shard_writer *w = lcc_shard_create(good, &m);
  for (int i = 0; i < 7; i++) {
    lcc_sample s;
    fx_sample(&s, &m, i, 2);
    LCC_CHECK(!lcc_shard_add(w, &s), "%s", lcc_last_error());
    lcc_sample_free(&s);
  }
  LCC_CHECK(!lcc_shard_finish(w), "%s", lcc_last_error());
  shard_errors();
  writer_errors();
  manifest_errors();
  loader_errors();
  return test_finish("test_shard_errors");
}
