// Where livecc-train's micro-batches come from: HDF5 shards through the loader, synthetic LiveCC-shaped
// samples (the same global-order slicing: sample k of the stream depends only on the seed and k), or one
// fixed batch file. A source owns the batch it hands out until the next call.
#include <stdlib.h>
#include <string.h>

#include "trainer.h"
#include "util.h"
#ifdef LCC_HAVE_LOADER
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "tokenizer.h"
#endif

enum { SRC_SYNTH, SRC_FILE, SRC_LOADER };

struct lcc_source {
  int kind;
  const lcc_config *cfg;
  lcc_owned_batch ob;
  int blank_frames;
  // synthetic: global stream positions, sliced per rank like the loader
  lcc_synth_shape shape;
  uint64_t seed;
  int fixed, world, rank, micro, accum, k;
  int64_t consumed;
#ifdef LCC_HAVE_LOADER
  lcc_loader *loader;
#endif
};

#ifdef LCC_HAVE_LOADER
// <dir>/tokenizer.json into path when dir is a folder that has one; 1 when found.
static int folder_tokenizer(const char *dir, char *path, size_t cap) {
  struct stat st;
  if (!dir[0] || stat(dir, &st) || !S_ISDIR(st.st_mode)) return 0;
  snprintf(path, cap, "%s/tokenizer.json", dir);
  return access(path, F_OK) == 0;
}

// What the shards must agree with: the model's vision geometry and vocabulary, and the tokenizer's hash when
// one is known (--tokenizer, or tokenizer.json in the HF folder of --model or --init; else not compared).
static int data_expect(const lcc_trainer *t, lcc_data_expect *e) {
  const lcc_train_opts *o = &t->o;
  char path[LCC_OPT_STR + 32] = "";
  if (o->tokenizer[0]) snprintf(path, sizeof path, "%s", o->tokenizer);
  else if (!folder_tokenizer(o->model, path, sizeof path) && !folder_tokenizer(o->init, path, sizeof path)) path[0] = 0;
  lcc_tokenizer *tk = NULL;
  if (path[0] && !(tk = lcc_tokenizer_load(path))) return lcc_error("tokenizer: %s", lcc_last_error());
  lcc_data_expect_of(&t->cfg, o->model, tk, path, e);
  lcc_tokenizer_free(tk);
  return 0;
}
#endif

lcc_source *lcc_source_open(lcc_trainer *t, const char *data, int shuffle, int world, int rank, int micro_batch,
                            int grad_accum, int64_t consumed) {
  const lcc_train_opts *o = &t->o;
  lcc_source *s = lcc_calloc(1, sizeof *s);
  s->cfg = &t->cfg;
  s->blank_frames = o->blank_frames;
  s->world = world, s->rank = rank, s->micro = micro_batch, s->accum = grad_accum, s->consumed = consumed;
  if (o->batch_file[0]) {
    s->kind = SRC_FILE;
    if (lcc_batch_load(&s->ob, o->batch_file, lcc_patch_dim(&t->cfg))) {
      free(s);
      return NULL;
    }
  } else if (data && data[0]) {
#ifdef LCC_HAVE_LOADER
    s->kind = SRC_LOADER;
    lcc_data_expect expect;
    if (data_expect(t, &expect)) {
      free(s);
      return NULL;
    }
    lcc_loader_opts lo = {.data = data, .seed = (uint64_t)o->seed, .shuffle = shuffle, .world_size = world,
                          .rank = rank, .micro_batch = micro_batch, .grad_accum = grad_accum,
                          .threads = o->data_threads, .prefetch = o->prefetch, .skip_corrupt = o->skip_corrupt,
                          .max_open_shards = 64, .expect = &expect};
    s->loader = lcc_loader_open(&lo, consumed);
    if (!s->loader) {
      free(s);
      return NULL;
    }
#else
    lcc_error("data '%s': this build has no data path (configure with -DLCC_WITH_DATA=ON)", data);
    free(s);
    return NULL;
#endif
  } else {
    s->kind = SRC_SYNTH;
    s->shape = (lcc_synth_shape){o->synth_chunks, o->synth_grid_h, o->synth_grid_w, o->synth_words};
    s->seed = (uint64_t)o->seed;
    s->fixed = o->synth_fixed;
  }
  return s;
}

int lcc_source_next(lcc_source *s, lcc_owned_batch **out) {
  switch (s->kind) {
  case SRC_FILE:
    break;
  case SRC_SYNTH: {
    // this rank's k-th micro-batch of the current global batch (a fixed source replays position 0)
    int64_t first = s->fixed ? 0 : s->consumed + (int64_t)s->rank * s->micro * s->accum + (int64_t)s->k * s->micro;
    lcc_batch_free(&s->ob);
    lcc_batch_synthetic(&s->ob, s->cfg, &s->shape, s->seed, first, s->micro);
    if (++s->k == s->accum) s->k = 0, s->consumed += (int64_t)s->micro * s->accum * s->world;
    break;
  }
  case SRC_LOADER:
#ifdef LCC_HAVE_LOADER
    lcc_batch_free(&s->ob);
    if (lcc_loader_next(s->loader, &s->ob)) return -1;
#endif
    break;
  }
  if (s->blank_frames && s->ob.b.n_patches)   // the no-frames ablation: every patch row at the mean colour
    memset(s->ob.pixels, 0, (size_t)s->ob.b.n_patches * lcc_patch_dim(s->cfg) * sizeof(float));
  *out = &s->ob;
  return 0;
}

int64_t lcc_source_skipped(const lcc_source *s) {
#ifdef LCC_HAVE_LOADER
  if (s->kind == SRC_LOADER) return lcc_loader_skipped(s->loader);
#endif
  return 0;
}

int64_t lcc_source_size(const lcc_source *s) {
#ifdef LCC_HAVE_LOADER
  if (s->kind == SRC_LOADER) return lcc_loader_samples(s->loader);
#endif
  return s->kind == SRC_FILE ? s->ob.b.n_samples : 0;
}

int lcc_source_datasets(const lcc_source *s) {
#ifdef LCC_HAVE_LOADER
  if (s->kind == SRC_LOADER) return lcc_loader_datasets(s->loader);
#endif
  return 0;
}

lcc_source_dataset lcc_source_dataset_info(const lcc_source *s, int d, int64_t consumed) {
  lcc_source_dataset out = {0};
#ifdef LCC_HAVE_LOADER
  if (s->kind == SRC_LOADER && d >= 0 && d < lcc_loader_datasets(s->loader)) {
    const lcc_loader_dataset info = lcc_loader_dataset_info(s->loader, d);
    int64_t *drawn = lcc_malloc((size_t)lcc_loader_datasets(s->loader) * sizeof(int64_t));   // [datasets]
    lcc_loader_drawn(s->loader, consumed, drawn);
    out = (lcc_source_dataset){info.name, info.weight, info.samples, drawn[d]};
    free(drawn);
  }
#else
  (void)s, (void)d, (void)consumed;
#endif
  return out;
}

int lcc_source_dataset_of(const lcc_source *s, int64_t id) {
#ifdef LCC_HAVE_LOADER
  if (s->kind == SRC_LOADER) return lcc_loader_dataset_of(s->loader, id);
#else
  (void)s, (void)id;
#endif
  return -1;
}

void lcc_source_close(lcc_source *s) {
  if (!s) return;
#ifdef LCC_HAVE_LOADER
  if (s->loader) lcc_loader_close(s->loader);
#endif
  lcc_batch_free(&s->ob);
  free(s);
}
