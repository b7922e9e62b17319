// Loader order: 298 tiny samples in 7 shards. The global sequence of samples is the same for every
// (world size, micro batch, grad accum, threads) with the same global batch; each epoch visits every sample
// exactly once; epochs and seeds differ; shuffle = 0 keeps the manifest's order. The packed batches carry the
// right labels, items and patch rows (raw frames: exact).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "media.h"
#include "model.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

#define N_SHARDS 7
static const int counts[N_SHARDS] = {40, 45, 50, 38, 47, 41, 37};   // 298 samples
#define N 298
#define G 6               // global batch
#define BATCHES 100       // 600 positions: two whole epochs and a bit

static const char *dir;
static lcc_shard_meta meta;

// The packed batch holds exactly what the samples say: ids, labels, items, patch rows of the raw frames.
static void check_content(const lcc_owned_batch *ob) {
  const int P = 3 * 2 * 14 * 14;
  int patch = 0, item = 0;
  for (int s = 0; s < ob->b.n_samples; s++) {
    const int32_t *ids = ob->ids + ob->sample_start[s], *labels = ob->labels + ob->sample_start[s];
    lcc_sample want;
    fx_sample(&want, &meta, ids[0], 2);
    CHECK(ob->sample_start[s + 1] - ob->sample_start[s] == want.n_tokens);
    for (int i = 0; i < want.n_tokens; i++) CHECK(ids[i] == want.ids[i] && labels[i] == (want.mask[i] ? want.ids[i] : -100));
    for (int k = 0, f = 0; k < want.n_items; k++, item++) {
      const lcc_shard_item *it = &want.items[k];
      const lcc_vision_item *got = &ob->items[item];
      CHECK(got->kind == it->kind && got->t == it->t && got->h == it->h && got->w == it->w);
      const int H = it->h * 14, W = it->w * 14, nf = it->kind == LCC_VIDEO ? 2 * it->t : 1, rows = it->t * it->h * it->w;
      uint8_t *rgb = lcc_malloc((size_t)nf * H * W * 3);
      for (int j = 0; j < nf; j++, f++) fx_frame(ids[0], f, H, W, rgb + (size_t)j * H * W * 3);
      float *px = lcc_malloc((size_t)rows * P * sizeof(float));
      lcc_patchify(rgb, nf, H, W, 14, 2, 2, meta.image_mean, meta.image_std, px);
      CHECK(patch + rows <= ob->b.n_patches && !memcmp(px, ob->pixels + (size_t)patch * P, (size_t)rows * P * sizeof(float)));
      patch += rows;
      free(rgb), free(px);
    }
    lcc_sample_free(&want);
  }
  CHECK(item == ob->b.n_items && patch == ob->b.n_patches && ob->sample_start[ob->b.n_samples] == ob->b.n_tokens);
}

// The tags of BATCHES global batches, read by W ranks (one loader each) with micro batch M and accumulation A.
static int64_t *run(int W, int M, int A, int threads, int shuffle, uint64_t seed, int content) {
  lcc_loader *l[G];
  for (int r = 0; r < W; r++) {
    lcc_loader_opts o = {.data = dir, .seed = seed, .shuffle = shuffle, .world_size = W, .rank = r, .micro_batch = M,
                         .grad_accum = A, .threads = threads, .prefetch = 3, .max_open_shards = threads == 1 ? 2 : 8};
    l[r] = lcc_loader_open(&o, 0);
    if (!l[r]) {
      fprintf(stderr, "%s\n", lcc_last_error());
      exit(1);
    }
    CHECK(lcc_loader_samples(l[r]) == N);
  }
  int64_t *tags = lcc_malloc(BATCHES * G * sizeof(int64_t)), n = 0;
  for (int b = 0; b < BATCHES; b++)
    for (int r = 0; r < W; r++) {
      for (int a = 0; a < A; a++) {
        lcc_owned_batch ob;
        if (lcc_loader_next(l[r], &ob)) {
          fprintf(stderr, "%s\n", lcc_last_error());
          exit(1);
        }
        CHECK(ob.b.n_samples == M);
        for (int s = 0; s < ob.b.n_samples; s++) tags[n++] = ob.ids[ob.sample_start[s]];
        if (content && b < 5) check_content(&ob);
        lcc_batch_free(&ob);
        CHECK(lcc_loader_consumed(l[r]) == (a == A - 1 ? b + 1 : b) * G);
      }
    }
  CHECK(n == BATCHES * G);
  for (int p = 0; p < BATCHES * G; p += 37) CHECK(lcc_loader_index_at(l[0], p) == tags[p]);
  for (int r = 0; r < W; r++) {
    CHECK(lcc_loader_skipped(l[r]) == 0);
    lcc_loader_close(l[r]);
  }
  return tags;
}

// Positions [from, from + N) visit every sample once.
static int one_epoch(const int64_t *tags, int from) {
  int seen[N] = {0};
  for (int p = from; p < from + N; p++) {
    if (tags[p] < 0 || tags[p] >= N || seen[tags[p]]) return 0;
    seen[tags[p]] = 1;
  }
  return 1;
}

int main(void) {
  dir = test_fresh_dir("order");
  fx_meta(&meta, LCC_CODEC_RAW);
  if (fx_dataset(dir, counts, N_SHARDS, &meta, 2)) {
    fprintf(stderr, "%s\n", lcc_last_error());
    return 1;
  }
  int64_t *ref = run(1, 6, 1, 0, 1, 42, 1);
  CHECK(one_epoch(ref, 0) && one_epoch(ref, N));
  CHECK(memcmp(ref, ref + N, N * sizeof(int64_t)) != 0);   // a new order each epoch
  const int configs[][4] = {{1, 3, 2, 2}, {1, 2, 3, 1}, {2, 3, 1, 2}, {2, 1, 3, 0}, {3, 2, 1, 3}, {3, 1, 2, 1}, {6, 1, 1, 0}};
  for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {   // {world, micro batch, accum, threads}
    int64_t *got = run(configs[c][0], configs[c][1], configs[c][2], configs[c][3], 1, 42, c == 1);
    CHECKF(!memcmp(got, ref, BATCHES * G * sizeof(int64_t)), "world %d, micro batch %d, accum %d, threads %d: a different order",
           configs[c][0], configs[c][1], configs[c][2], configs[c][3]);
    free(got);
  }
  int64_t *other = run(1, 6, 1, 1, 1, 43, 0);
  CHECK(one_epoch(other, 0) && memcmp(other, ref, N * sizeof(int64_t)) != 0);   // another seed, another order
  free(other);
  int64_t *plain = run(2, 3, 1, 2, 0, 42, 0);
  for (int p = 0; p < BATCHES * G; p++) CHECK(plain[p] == p % N);   // shuffle = 0: the manifest's order
  free(plain);
  printf("first samples of epoch 0: %lld %lld %lld %lld %lld %lld\n", (long long)ref[0], (long long)ref[1],
         (long long)ref[2], (long long)ref[3], (long long)ref[4], (long long)ref[5]);
  free(ref);
  return test_finish("test_loader_order");
}
