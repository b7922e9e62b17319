// Resume and thread independence, on JPEG frames: the micro-batches (tokens, labels, items, patch rows) do not
// depend on the thread count; a loader opened with consumed = k global batches continues exactly where an
// uninterrupted one is, also on another world size with the same global batch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

#define P (3 * 2 * 14 * 14)   // patch row width
#define MB 24                 // micro-batches read by the uninterrupted loader (12 global batches)

static const char *dir;

static lcc_loader *open_loader(int world, int rank, int micro, int accum, int threads, int64_t consumed) {
  lcc_loader_opts o = {.data = dir, .seed = 7, .shuffle = 1, .world_size = world, .rank = rank, .micro_batch = micro,
                       .grad_accum = accum, .threads = threads, .prefetch = 4, .max_open_shards = 3};
  lcc_loader *l = lcc_loader_open(&o, consumed);
  if (!l) {
    fprintf(stderr, "%s\n", lcc_last_error());
    exit(1);
  }
  return l;
}

static void next(lcc_loader *l, lcc_owned_batch *ob) {
  if (lcc_loader_next(l, ob)) {
    fprintf(stderr, "%s\n", lcc_last_error());
    exit(1);
  }
}

static int same_batch(const lcc_owned_batch *a, const lcc_owned_batch *b) {
  const lcc_batch *x = &a->b, *y = &b->b;
  return x->n_samples == y->n_samples && x->n_tokens == y->n_tokens && x->n_items == y->n_items &&
         x->n_patches == y->n_patches && !memcmp(x->ids, y->ids, (size_t)x->n_tokens * sizeof(int32_t)) &&
         !memcmp(x->labels, y->labels, (size_t)x->n_tokens * sizeof(int32_t)) &&
         !memcmp(x->sample_start, y->sample_start, ((size_t)x->n_samples + 1) * sizeof(int32_t)) &&
         !memcmp(x->items, y->items, (size_t)x->n_items * sizeof(lcc_vision_item)) &&
         !memcmp(x->pixels, y->pixels, (size_t)x->n_patches * P * sizeof(float));
}

int main(void) {
  dir = test_fresh_dir("resume");
  lcc_shard_meta meta;
  fx_meta(&meta, LCC_CODEC_JPEG);
  const int counts[5] = {9, 12, 7, 10, 8};   // 46 samples: the 12 global batches of 4 cross an epoch boundary
  if (fx_dataset(dir, counts, 5, &meta, 4)) {
    fprintf(stderr, "%s\n", lcc_last_error());
    return 1;
  }
  // Uninterrupted: 1 rank, micro batch 2, accumulation 2 (global batch 4), two threads.
  lcc_owned_batch ref[MB];
  lcc_loader *l = open_loader(1, 0, 2, 2, 2, 0);
  int64_t patches = 0;
  for (int k = 0; k < MB; k++) {
    next(l, &ref[k]);
    CHECK(ref[k].b.n_samples == 2);
    patches += ref[k].b.n_patches;
    if (k == 5) CHECK(lcc_loader_consumed(l) == 12);   // 3 whole global batches
  }
  lcc_loader_close(l);
  CHECK(patches > 1000);

  const int threads[2] = {0, 3};   // the thread count changes nothing
  for (int t = 0; t < 2; t++) {
    l = open_loader(1, 0, 2, 2, threads[t], 0);
    for (int k = 0; k < MB; k++) {
      lcc_owned_batch ob;
      next(l, &ob);
      CHECK(same_batch(&ob, &ref[k]));
      lcc_batch_free(&ob);
    }
    lcc_loader_close(l);
  }

  const int stops[3] = {1, 5, 11};   // resume after k global batches
  for (int s = 0; s < 3; s++) {
    const int64_t consumed = 4 * stops[s];
    l = open_loader(1, 0, 2, 2, 1, consumed);
    CHECK(lcc_loader_consumed(l) == consumed);
    for (int k = 2 * stops[s]; k < MB; k++) {
      lcc_owned_batch ob;
      next(l, &ob);
      CHECK(same_batch(&ob, &ref[k]));
      lcc_batch_free(&ob);
    }
    CHECK(lcc_loader_consumed(l) == 4 * MB / 2);
    lcc_loader_close(l);
  }

  // Resume on 2 ranks (micro batch 2, no accumulation: the same global batch of 4) after 5 global batches:
  // rank r's micro-batch b is the uninterrupted run's micro-batch 2b + r.
  lcc_loader *ranks[2] = {open_loader(2, 0, 2, 1, 1, 20), open_loader(2, 1, 2, 1, 0, 20)};
  for (int b = 5; b < MB / 2; b++)
    for (int r = 0; r < 2; r++) {
      lcc_owned_batch ob;
      next(ranks[r], &ob);
      CHECK(same_batch(&ob, &ref[2 * b + r]));
      lcc_batch_free(&ob);
    }
  lcc_loader_close(ranks[0]), lcc_loader_close(ranks[1]);
  for (int k = 0; k < MB; k++) lcc_batch_free(&ref[k]);
  return test_finish("test_loader_resume");
}
