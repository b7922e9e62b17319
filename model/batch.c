#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "safetensors.h"
#include "util.h"

void lcc_batch_free(lcc_owned_batch *ob) {
  free(ob->ids), free(ob->labels), free(ob->sample_start), free(ob->items), free(ob->pixels), free(ob->sample_ids);
  memset(ob, 0, sizeof *ob);
}

void lcc_batch_bind(lcc_owned_batch *ob, int n_samples, int n_tokens, int n_items, int n_patches) {
  ob->b = (lcc_batch){.n_samples = n_samples, .n_tokens = n_tokens, .ids = ob->ids, .labels = ob->labels,
                      .sample_start = ob->sample_start, .n_items = n_items, .items = ob->items,
                      .n_patches = n_patches, .pixels = ob->pixels, .loss_mode = LCC_LOSS_SAMPLE_MEAN,
                      .norm_count = n_samples};
}

// Copies an integer tensor of exactly `n` elements (any of I32/I64) into out.
static int read_ints(const lcc_st_file *f, const char *name, size_t n, int32_t *out) {
  const lcc_st_tensor *t = lcc_st_find(f, name);
  if (!t) return lcc_error("%s: missing tensor '%s'", f->path, name);
  if (t->numel != n) return lcc_error("%s: tensor '%s' has %zu elements, expected %zu", f->path, name, t->numel, n);
  const void *d = lcc_st_data(f, t);
  if (t->dtype == LCC_I32) memcpy(out, d, n * sizeof(int32_t));
  else if (t->dtype == LCC_I64) for (size_t i = 0; i < n; i++) out[i] = (int32_t)((const int64_t *)d)[i];
  else return lcc_error("%s: tensor '%s' must be I32 or I64, not %s", f->path, name, lcc_dtype_name(t->dtype));
  return 0;
}

int lcc_batch_load(lcc_owned_batch *ob, const char *path, int patch_dim) {
  memset(ob, 0, sizeof *ob);
  lcc_st_file *f = lcc_st_open(path);
  if (!f) return -1;
  const lcc_st_tensor *ids = lcc_st_find(f, "input_ids"), *grid = lcc_st_find(f, "grid_thw"), *starts = lcc_st_find(f, "sample_start");
  const lcc_st_tensor *pix = lcc_st_find(f, "pixel_values");
  int rc = 0;
  if (!ids) rc = lcc_error("%s: missing tensor 'input_ids'", path);
  const int T = ids ? (int)ids->numel : 0;
  const int K = grid ? (int)(grid->numel / 3) : 0, S = starts ? (int)starts->numel - 1 : 1;
  const int N = pix ? (int)(pix->numel / (size_t)patch_dim) : 0;
  if (!rc && pix && (pix->ndim != 2 || pix->shape[1] != patch_dim))
    rc = lcc_error("%s: pixel_values must be [n_patches, %d]", path, patch_dim);
  if (!rc && S < 1) rc = lcc_error("%s: sample_start needs at least 2 entries", path);
  ob->ids = lcc_malloc((size_t)T * sizeof(int32_t));
  ob->labels = lcc_malloc((size_t)T * sizeof(int32_t));
  ob->sample_start = lcc_malloc(((size_t)S + 1) * sizeof(int32_t));
  ob->items = lcc_calloc((size_t)K + 1, sizeof(lcc_vision_item));
  ob->pixels = lcc_malloc(((size_t)N * patch_dim + 1) * sizeof(float));
  if (!rc) rc = read_ints(f, "input_ids", (size_t)T, ob->ids);
  if (!rc) rc = read_ints(f, "labels", (size_t)T, ob->labels);
  if (!rc && starts) rc = read_ints(f, "sample_start", (size_t)S + 1, ob->sample_start);
  else if (!rc) ob->sample_start[0] = 0, ob->sample_start[1] = T;
  if (!rc && K) {
    int32_t *g = lcc_malloc((size_t)K * 4 * sizeof(int32_t));
    rc = read_ints(f, "grid_thw", (size_t)K * 3, g);
    if (!rc) rc = read_ints(f, "item_kind", (size_t)K, g + 3 * K);
    for (int k = 0; k < K && !rc; k++) ob->items[k] = (lcc_vision_item){g[3 * K + k], g[3 * k], g[3 * k + 1], g[3 * k + 2]};
    free(g);
  }
  if (!rc && N) rc = lcc_st_read_f32(f, pix, ob->pixels);
  lcc_st_close(f);
  if (rc) {
    lcc_batch_free(ob);
    return -1;
  }
  lcc_batch_bind(ob, S, T, K, N);
  return 0;
}

int lcc_batch_save(const lcc_owned_batch *ob, const char *path, int patch_dim) {
  const lcc_batch *b = &ob->b;
  int32_t *g = lcc_malloc(((size_t)b->n_items * 4 + 1) * sizeof(int32_t));
  for (int k = 0; k < b->n_items; k++) {
    g[3 * k] = b->items[k].t, g[3 * k + 1] = b->items[k].h, g[3 * k + 2] = b->items[k].w;
    g[3 * b->n_items + k] = b->items[k].kind;
  }
  lcc_st_entry e[6] = {
      {"input_ids", LCC_I32, 1, {b->n_tokens}, b->ids},
      {"labels", LCC_I32, 1, {b->n_tokens}, b->labels},
      {"sample_start", LCC_I32, 1, {b->n_samples + 1}, b->sample_start},
      {"pixel_values", LCC_F32, 2, {b->n_patches, patch_dim}, b->pixels},
      {"grid_thw", LCC_I32, 2, {b->n_items, 3}, g},
      {"item_kind", LCC_I32, 1, {b->n_items}, g + 3 * b->n_items},
  };
  const char *meta[] = {"format", "pt"};
  int rc = lcc_st_write(path, e, 6, meta, 1, 0);
  free(g);
  return rc;
}

// ---- synthetic LiveCC-shaped samples ----

static uint64_t next_u64(uint64_t *s) {   // splitmix64
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  int32_t *ids, *labels;
  int n;
} token_writer;

static void put(token_writer *w, int32_t id, int trained) {
  w->ids[w->n] = id;
  w->labels[w->n] = trained ? id : -100;
  w->n++;
}

static void text(token_writer *w, int n, uint64_t *rng, int text_vocab) {   // untrained random text
  for (int i = 0; i < n; i++) put(w, (int32_t)(next_u64(rng) % (uint64_t)text_vocab), 0);
}

void lcc_batch_synthetic(lcc_owned_batch *ob, const lcc_config *cfg, const lcc_synth_shape *shape, uint64_t seed,
                         int64_t first, int n_samples) {
  const int U = lcc_merge_units(cfg), P = lcc_patch_dim(cfg);
  const int chunks = shape->chunks, gh = shape->grid_h, gw = shape->grid_w, words = shape->words;
  const int text_vocab = cfg->bos_token_id < cfg->vocab_size ? cfg->bos_token_id : cfg->vocab_size;
  const int im_start = cfg->bos_token_id + 1, im_end = cfg->eos_token_id, nl = 198 % text_vocab;
  const int ellipsis = 2503 % text_vocab, role_user = 872 % text_vocab, role_asst = 77091 % text_vocab;
  const int per_sample_tokens = 16 + chunks * (words + 24) + (chunks ? 3 + chunks - 1 : 0) * gh * gw / U;   // upper bound
  const int per_sample_patches = (chunks ? 3 + chunks - 1 : 0) * gh * gw;
  memset(ob, 0, sizeof *ob);
  ob->ids = lcc_malloc((size_t)n_samples * per_sample_tokens * sizeof(int32_t));
  ob->labels = lcc_malloc((size_t)n_samples * per_sample_tokens * sizeof(int32_t));
  ob->sample_start = lcc_malloc(((size_t)n_samples + 1) * sizeof(int32_t));
  ob->items = lcc_malloc(((size_t)n_samples * chunks + 1) * sizeof(lcc_vision_item));
  ob->pixels = lcc_malloc(((size_t)n_samples * per_sample_patches * P + 1) * sizeof(float));
  ob->sample_ids = lcc_malloc(((size_t)n_samples + 1) * sizeof(int64_t));
  token_writer w = {ob->ids, ob->labels, 0};
  int n_items = 0, n_patches = 0;
  for (int s = 0; s < n_samples; s++) {
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(first + s);   // this sample's own stream
    next_u64(&rng);
    ob->sample_start[s] = w.n;
    ob->sample_ids[s] = first + s;
    put(&w, im_start, 0), text(&w, 3, &rng, text_vocab), put(&w, im_end, 0), put(&w, nl, 0);   // system turn
    for (int c = 0; c < chunks; c++) {
      const int t = c == 0 ? 3 : 1;
      put(&w, im_start, 0), put(&w, role_user, 0), put(&w, nl, 0), text(&w, 6, &rng, text_vocab);   // "Time=a-bs"
      put(&w, cfg->vision_start_token_id, 0);
      for (int k = 0; k < t * gh * gw / U; k++) put(&w, cfg->video_token_id, 0);
      put(&w, cfg->vision_end_token_id, 0);
      if (c == 0) text(&w, 4, &rng, text_vocab);   // context
      put(&w, im_end, 0), put(&w, nl, 0);
      put(&w, im_start, 0), put(&w, role_asst, 0), put(&w, nl, 0);
      for (int k = 0; k < words; k++) put(&w, (int32_t)(next_u64(&rng) % (uint64_t)text_vocab), 1);
      put(&w, ellipsis, 1), put(&w, im_end, 1), put(&w, nl, 0);
      ob->items[n_items++] = (lcc_vision_item){LCC_VIDEO, t, gh, gw};
      for (size_t k = 0; k < (size_t)t * gh * gw * P; k++) {   // N(0,1) rows via Box-Muller
        double u1 = ((next_u64(&rng) >> 11) + 1.0) * 0x1.0p-53, u2 = (next_u64(&rng) >> 11) * 0x1.0p-53;
        ob->pixels[(size_t)n_patches * P + k] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
      }
      n_patches += t * gh * gw;
    }
  }
  ob->sample_start[n_samples] = w.n;
  lcc_batch_bind(ob, n_samples, w.n, n_items, n_patches);
}
