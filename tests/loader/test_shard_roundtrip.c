// Shard round trip: samples written with lcc_shard_* read back identical (tokens, masks, items, provenance,
// frame bytes) for raw and JPEG frames; JPEG frames decode close to the originals; h5dump sees the format
// attributes; CRC-64/ECMA-182 check value; the manifest survives a write and a load.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "model.h"
#include "shard.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

static int same_sample(const lcc_sample *a, const lcc_sample *b) {
  return a->n_tokens == b->n_tokens && !memcmp(a->ids, b->ids, (size_t)a->n_tokens * sizeof(int32_t)) &&
         !memcmp(a->mask, b->mask, (size_t)a->n_tokens) && a->n_items == b->n_items &&
         !memcmp(a->items, b->items, (size_t)a->n_items * sizeof(lcc_shard_item)) && a->n_frames == b->n_frames &&
         !memcmp(a->frame_off, b->frame_off, ((size_t)a->n_frames + 1) * sizeof(int64_t)) &&
         !memcmp(a->frame_data, b->frame_data, (size_t)a->frame_off[a->n_frames]) && !strcmp(a->source, b->source) &&
         a->clip_start == b->clip_start && a->clip_end == b->clip_end && a->source_line == b->source_line;
}

// Mean absolute difference between the decoded JPEG frames of s and the originals.
static double jpeg_error(const lcc_sample *s, const lcc_shard_meta *m, int64_t tag) {
  double sum = 0;
  size_t count = 0;
  for (int k = 0, f = 0; k < s->n_items; k++) {
    const int H = s->items[k].h * m->patch_size, W = s->items[k].w * m->patch_size;
    const int nf = s->items[k].kind == LCC_VIDEO ? m->temporal_patch_size * s->items[k].t : 1;
    uint8_t *want = lcc_malloc((size_t)H * W * 3), *got = lcc_malloc((size_t)H * W * 3);
    for (int j = 0; j < nf; j++, f++) {
      fx_frame(tag, f, H, W, want);
      if (lcc_jpeg_decode(s->frame_data + s->frame_off[f], (size_t)(s->frame_off[f + 1] - s->frame_off[f]), H, W, got)) {
        fprintf(stderr, "%s\n", lcc_last_error());
        free(want), free(got);
        return 1e9;
      }
      for (size_t i = 0; i < (size_t)H * W * 3; i++) sum += abs((int)want[i] - (int)got[i]);
      count += (size_t)H * W * 3;
    }
    free(want), free(got);
  }
  return count ? sum / (double)count : 0;
}

// Sample i of the round trip: small ones, one with 40,000 more text tokens (spanning token chunks) and one
// with 448-pixel frames (spanning frame chunks).
static void make(lcc_sample *s, const lcc_shard_meta *m, int i) {
  fx_sample(s, m, 100 + i, i == 5 ? 32 : 2 + 2 * (i % 2));
  if (i != 3) return;
  const int extra = 40000;
  s->ids = lcc_realloc(s->ids, (size_t)(s->n_tokens + extra) * sizeof(int32_t));
  s->mask = lcc_realloc(s->mask, (size_t)(s->n_tokens + extra));
  for (int k = 0; k < extra; k++, s->n_tokens++) s->ids[s->n_tokens] = 3000 + k % 7919, s->mask[s->n_tokens] = (uint8_t)(k % 3 == 0);
}

static void round_trip(int codec, int n) {
  lcc_shard_meta m;
  fx_meta(&m, codec);
  char path[4200];
  snprintf(path, sizeof path, "%s/one.h5", test_fresh_dir(codec == LCC_CODEC_RAW ? "roundtrip_raw" : "roundtrip_jpeg"));
  lcc_shard_writer *w = lcc_shard_create(path, &m);
  CHECK(w);
  if (!w) return;
  for (int i = 0; i < n; i++) {
    lcc_sample s;
    make(&s, &m, i);
    CHECK(lcc_shard_add(w, &s) == 0);
    lcc_sample_free(&s);
  }
  CHECK(lcc_shard_finish(w) == 0);
  lcc_shard *sh = lcc_shard_open(path);
  if (!sh) fprintf(stderr, "%s\n", lcc_last_error());
  CHECK(sh);
  if (!sh) return;
  const lcc_shard_meta *g = lcc_shard_meta_of(sh);
  CHECK(lcc_shard_count(sh) == n);
  CHECK(g->tokenizer_hash == m.tokenizer_hash && g->patch_size == 14 && g->merge_size == 2 && g->temporal_patch_size == 2);
  CHECK(g->fps == m.fps && g->frame_codec == codec && g->jpeg_quality == m.jpeg_quality);
  CHECK(!memcmp(g->image_mean, m.image_mean, sizeof m.image_mean) && !memcmp(g->image_std, m.image_std, sizeof m.image_std));
  double err = 0;
  for (int i = n - 1; i >= 0; i--) {   // any order: each sample is read on its own
    lcc_sample want, got;
    make(&want, &m, i);
    const int rc = lcc_shard_read(sh, i, &got);
    if (rc) fprintf(stderr, "%s\n", lcc_last_error());
    CHECK(rc == 0);
    CHECK(same_sample(&want, &got));
    if (codec == LCC_CODEC_JPEG) {
      const double e = jpeg_error(&got, &m, 100 + i);
      err = e > err ? e : err;
    }
    lcc_sample_free(&want), lcc_sample_free(&got);
  }
  lcc_sample none;
  CHECK(lcc_shard_read(sh, n, &none) == -1 && strstr(lcc_last_error(), "out of range"));
  lcc_shard_close(sh);
  if (codec == LCC_CODEC_JPEG) {
    printf("JPEG q%d: worst mean absolute error of a sample's frames %.2f\n", m.jpeg_quality, err);
    CHECK(err < 6.0);
  }
  if (system("command -v h5dump >/dev/null 2>&1") == 0) {   // an independent reader sees the format
    char cmd[8600], out[4300];
    snprintf(out, sizeof out, "%s.attrs", path);
    snprintf(cmd, sizeof cmd, "h5dump -A '%s' > '%s'", path, out);
    CHECK(system(cmd) == 0);
    char *text = lcc_read_file(out, NULL);
    CHECK(text && strstr(text, "ATTRIBUTE \"format\"") && strstr(text, "\"livecc-shard\"") && strstr(text, "ATTRIBUTE \"version\""));
    CHECK(text && strstr(text, codec == LCC_CODEC_JPEG ? "\"jpeg\"" : "\"raw\"") && strstr(text, "DATASET \"frame_offset\""));
    free(text);
    snprintf(cmd, sizeof cmd, "h5dump -p -H -d /tokens '%s' | grep -q 'SHUFFLE' && h5dump -p -H -d /tokens '%s' | grep -q 'DEFLATE'", path, path);
    CHECK(system(cmd) == 0);
  } else {
    printf("h5dump not found: skipping the h5dump check\n");
  }
}

static void crc_and_manifest(void) {
  const char *dir = test_fresh_dir("manifest");
  char path[4200];
  snprintf(path, sizeof path, "%s/check.txt", dir);
  FILE *f = fopen(path, "w");
  fputs("123456789", f);
  fclose(f);
  int64_t bytes;
  uint64_t crc;
  CHECK(lcc_file_crc64(path, &crc, &bytes) == 0 && crc == 0x6C40DF5F0B497347ull && bytes == 9);   // CRC-64/ECMA-182
  CHECK(lcc_file_crc64("/nonexistent/x", &crc, &bytes) != 0 && strstr(lcc_last_error(), "/nonexistent/x"));

  lcc_manifest m = {.dir = lcc_strdup(dir), .n = 3, .tokenizer_hash = 0xfedcba9876543210ull};
  m.shards = lcc_calloc(3, sizeof(lcc_manifest_entry));
  const char *names[3] = {"a.h5", "sub/b \"quoted\".h5", "c\\d.h5"};
  for (int i = 0; i < 3; i++)
    m.shards[i] = (lcc_manifest_entry){lcc_strdup(names[i]), 10 + i, 1000 * (i + 1), 0x8000000000000001ull * (uint64_t)(i + 1)};
  CHECK(lcc_manifest_write(&m) == 0);
  lcc_manifest r;
  CHECK(lcc_manifest_load(dir, &r) == 0);
  CHECK(r.n == 3 && r.total_samples == 33 && r.tokenizer_hash == m.tokenizer_hash && !strcmp(r.dir, dir));
  for (int i = 0; i < 3 && r.n == 3; i++)
    CHECK(!strcmp(r.shards[i].file, names[i]) && r.shards[i].n_samples == 10 + i && r.shards[i].bytes == 1000 * (i + 1) &&
          r.shards[i].checksum == m.shards[i].checksum);
  lcc_manifest_free(&r);
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  CHECK(lcc_manifest_load(path, &r) == 0 && r.n == 3 && !strcmp(r.dir, dir));   // the file itself works too
  lcc_manifest_free(&r);
  lcc_manifest_free(&m);
}

int main(void) {
  round_trip(LCC_CODEC_RAW, 7);
  round_trip(LCC_CODEC_JPEG, 7);
  crc_and_manifest();
  return test_finish("test_shard_roundtrip");
}
