// The training loader (loader.h). This rank's k-th micro-batch (k = 0, 1, ... after open) is a pure function
// of k, the options and the data: workers claim micro-batches in order, prepare each one whole (read its
// samples under the HDF5 lock, decode and build patch rows outside it) into slot k % slots, and
// lcc_loader_next hands them out in order. So batches never depend on the thread count or on timing.
//
// Stream positions: with consumed positions already used at open, global batch b covers
// [consumed + b*G, consumed + (b+1)*G). A corrupt sample (skip_corrupt) at position p is replaced by the
// sample at the first of p+1, p+2, ... that reads and decodes: every micro-batch keeps its samples, the
// positions every rank consumes stay the same, and since corruption is a property of the data a resumed run
// makes the same replacements (a replacement may repeat a sample within the epoch).
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"
#include "media.h"
#include "order.h"
#include "pack.h"
#include "shard.h"
#include "util.h"

typedef struct {
  int shard;              // manifest index
  lcc_shard *s;
  uint64_t used;          // LRU clock value of the last use
} open_shard;

typedef struct {
  int64_t epoch;          // -1: not built
  uint32_t *perm;         // [N] global sample index at each position of the epoch
} epoch_order;

enum { SLOT_EMPTY, SLOT_BUSY, SLOT_READY };
typedef struct {
  int state;
  int64_t k;              // the micro-batch it holds
  lcc_owned_batch batch;
  int rc;                 // 0, or -1 with the message in err
  char err[1024];
  int64_t skipped;        // corrupt samples left out of this micro-batch
} slot;

struct lcc_loader {
  lcc_loader_opts o;       // o.expect points at `expect` (or is NULL)
  lcc_data_expect expect;
  lcc_manifest m;
  char *manifest;         // path of manifest.json, for messages
  int64_t *starts;        // [n_shards + 1] global index of each shard's first sample
  int64_t N, G;           // samples per epoch; positions per global batch
  int64_t consumed0;      // positions consumed before open

  pthread_mutex_t lock;   // guards what follows up to `h5`
  pthread_cond_t changed; // a slot changed state, a micro-batch was taken, or stop
  epoch_order order[2];   // the two most recent epochs in use
  slot *slots;
  int n_slots;
  int64_t next_claim;     // next micro-batch a worker prepares
  int64_t next_return;    // next micro-batch lcc_loader_next returns
  int64_t skipped;
  int failed;             // an error was returned: every later call returns it again
  char err[1024];
  int stop;

  pthread_mutex_t h5;     // every HDF5 call, the open shards and the first shard's metadata
  open_shard *open;       // [max_open_shards]
  int n_open;
  uint64_t clock;
  int have_first;
  lcc_shard_meta first;   // of the first shard opened: every other must agree with it
  int mismatch;           // the first shard to open differs from o.expect

  pthread_t *workers;
  int n_workers;
};

// ---- order ----

// The permutation of epoch e (caller holds lock); builds it over the older of the two cached epochs.
static const uint32_t *epoch_perm(lcc_loader *l, int64_t e) {
  for (int c = 0; c < 2; c++)
    if (l->order[c].epoch == e) return l->order[c].perm;
  epoch_order *o = &l->order[l->order[0].epoch < l->order[1].epoch ? 0 : 1];
  if (!o->perm) o->perm = lcc_malloc((size_t)l->N * sizeof(uint32_t));
  lcc_order_permutation(l->o.seed, e, o->perm, l->N);
  o->epoch = e;
  return o->perm;
}

static int64_t index_at(lcc_loader *l, int64_t p) {
  const int64_t i = p % l->N;
  return l->o.shuffle ? epoch_perm(l, p / l->N)[i] : i;
}

int64_t lcc_loader_index_at(lcc_loader *l, int64_t p) {
  if (p < 0) return -1;
  pthread_mutex_lock(&l->lock);
  const int64_t i = index_at(l, p);
  pthread_mutex_unlock(&l->lock);
  return i;
}

// Stream positions of this rank's micro-batch k.
static void plan(const lcc_loader *l, int64_t k, int64_t *positions) {
  const int64_t M = l->o.micro_batch, A = l->o.grad_accum;
  const int64_t start = l->consumed0 + k / A * l->G + l->o.rank * M * A + k % A * M;
  for (int64_t j = 0; j < M; j++) positions[j] = start + j;
}

// ---- shards ----

static char *shard_path(const lcc_loader *l, int s) {
  const size_t n = strlen(l->m.dir) + strlen(l->m.shards[s].file) + 2;
  char *p = lcc_malloc(n);
  snprintf(p, n, "%s/%s", l->m.dir, l->m.shards[s].file);
  return p;
}

// ---- shard metadata against the model and the other shards ----

void lcc_data_expect_of(const lcc_config *cfg, const char *model, const lcc_tokenizer *tk, const char *tokenizer,
                        lcc_data_expect *e) {
  memset(e, 0, sizeof *e);
  snprintf(e->model, sizeof e->model, "%s", model);
  snprintf(e->tokenizer, sizeof e->tokenizer, "%s", tk ? tokenizer : "");
  e->patch_size = cfg->patch_size, e->merge_size = cfg->spatial_merge_size;
  e->temporal_patch_size = cfg->temporal_patch_size;
  memcpy(e->image_mean, lcc_clip_mean, sizeof e->image_mean);   // Qwen2-VL's preprocessor (media.h)
  memcpy(e->image_std, lcc_clip_std, sizeof e->image_std);
  e->vocab_size = cfg->vocab_size;
  e->tokenizer_hash = tk ? lcc_tokenizer_hash(tk) : 0;
}

static int same3(const float *a, const float *b) { return fabsf(a[0] - b[0]) + fabsf(a[1] - b[1]) + fabsf(a[2] - b[2]) < 1e-6f; }

// 0 when shard metadata m (of `path`) is what e needs; else -1 with lcc_error() naming both values.
static int check_expected(const char *path, const lcc_shard_meta *m, const lcc_data_expect *e) {
  const char *what[3] = {"patch_size", "spatial_merge_size", "temporal_patch_size"};
  const int have[3] = {m->patch_size, m->merge_size, m->temporal_patch_size};
  const int want[3] = {e->patch_size, e->merge_size, e->temporal_patch_size};
  for (int i = 0; i < 3; i++)
    if (have[i] != want[i])
      return lcc_error("%s: the shards have %s %d, the model %s has %d: its pixel rows would be misread (prepare "
                       "the data for this model)", path, what[i], have[i], e->model, want[i]);
  const float *hv[2] = {m->image_mean, m->image_std}, *wv[2] = {e->image_mean, e->image_std};
  for (int i = 0; i < 2; i++)
    if (!same3(hv[i], wv[i]))
      return lcc_error("%s: the shards' frames are normalized with image_%s (%.8g, %.8g, %.8g), the model %s "
                       "expects (%.8g, %.8g, %.8g)", path, i ? "std" : "mean", hv[i][0], hv[i][1], hv[i][2],
                       e->model, wv[i][0], wv[i][1], wv[i][2]);
  if (m->vocab_size > e->vocab_size)
    return lcc_error("%s: the shards were tokenized with a vocabulary of %d ids, the model %s has vocab_size %d",
                     path, m->vocab_size, e->model, e->vocab_size);
  if (e->tokenizer_hash && m->tokenizer_hash != e->tokenizer_hash)
    return lcc_error("%s: the shards' tokenizer hash is %016llx, the tokenizer %s has %016llx: the data was "
                     "tokenized with another tokenizer", path, (unsigned long long)m->tokenizer_hash, e->tokenizer,
                     (unsigned long long)e->tokenizer_hash);
  return 0;
}

// 0 when shard metadata m (of `path`) agrees with the first shard's in everything a sample's meaning depends on.
static int check_like_first(const char *path, const lcc_shard_meta *m, const lcc_shard_meta *f) {
  if (m->patch_size != f->patch_size || m->merge_size != f->merge_size || m->temporal_patch_size != f->temporal_patch_size)
    return lcc_error("%s: patch/merge/temporal sizes %d/%d/%d differ from other shards' %d/%d/%d", path, m->patch_size,
                     m->merge_size, m->temporal_patch_size, f->patch_size, f->merge_size, f->temporal_patch_size);
  if (!same3(m->image_mean, f->image_mean) || !same3(m->image_std, f->image_std))
    return lcc_error("%s: image_mean/image_std differ from other shards'", path);
  if (m->vocab_size != f->vocab_size)
    return lcc_error("%s: vocab_size %d differs from other shards' %d", path, m->vocab_size, f->vocab_size);
  return 0;
}

// Opens shard s and checks it against its manifest entry and the other shards (caller holds h5).
static lcc_shard *open_checked(lcc_loader *l, int s, const char *path) {
  const lcc_manifest_entry *e = &l->m.shards[s];
  struct stat st;
  if (stat(path, &st)) {
    lcc_error("%s: %s (listed in %s)", path, strerror(errno), l->manifest);
    return NULL;
  }
  if ((int64_t)st.st_size != e->bytes) {
    lcc_error("%s: %lld bytes, but %s says %lld (truncated or rewritten? livecc-prep --verify=DIR checks every shard)",
              path, (long long)st.st_size, l->manifest, (long long)e->bytes);
    return NULL;
  }
  lcc_shard *sh = lcc_shard_open(path);
  if (!sh) return NULL;
  const lcc_shard_meta *m = lcc_shard_meta_of(sh);
  int rc = 0;
  if (lcc_shard_count(sh) != e->n_samples)
    rc = lcc_error("%s: %lld samples, but %s says %lld", path, (long long)lcc_shard_count(sh), l->manifest, (long long)e->n_samples);
  else if (m->tokenizer_hash != l->m.tokenizer_hash)
    rc = lcc_error("%s: tokenizer hash %016llx differs from the manifest's %016llx", path,
                   (unsigned long long)m->tokenizer_hash, (unsigned long long)l->m.tokenizer_hash);
  else if (l->have_first)
    rc = check_like_first(path, m, &l->first);
  else if (l->o.expect && check_expected(path, m, l->o.expect))
    rc = -1, l->mismatch = 1;
  else
    l->have_first = 1, l->first = *m;
  if (rc) {
    lcc_shard_close(sh);
    return NULL;
  }
  return sh;
}

// Shard s from the open set, opening it (and closing the least recently used one) when needed.
static lcc_shard *get_shard(lcc_loader *l, int s, const char *path) {
  for (int i = 0; i < l->n_open; i++)
    if (l->open[i].shard == s) {
      l->open[i].used = ++l->clock;
      return l->open[i].s;
    }
  lcc_shard *sh = open_checked(l, s, path);
  if (!sh) return NULL;
  int slot = l->n_open;
  if (l->n_open == l->o.max_open_shards) {
    slot = 0;
    for (int i = 1; i < l->n_open; i++)
      if (l->open[i].used < l->open[slot].used) slot = i;
    lcc_shard_close(l->open[slot].s);
  } else {
    l->n_open++;
  }
  l->open[slot] = (open_shard){s, sh, ++l->clock};
  return sh;
}

// Reads global sample idx into in (under the HDF5 lock). -1 with lcc_error() when it cannot be read.
static int read_sample(lcc_loader *l, int64_t idx, lcc_pack_input *in) {
  const int s = lcc_order_shard_of(l->starts, l->m.n, idx);
  in->shard = shard_path(l, s);
  in->index = idx - l->starts[s];
  pthread_mutex_lock(&l->h5);
  lcc_shard *sh = get_shard(l, s, in->shard);
  int rc = sh ? lcc_shard_read(sh, in->index, &in->s) : -1;
  if (!rc) in->meta = *lcc_shard_meta_of(sh);
  pthread_mutex_unlock(&l->h5);
  if (!sh) {   // the message names the shard; add the sample that needed it
    char why[1024];
    snprintf(why, sizeof why, "%s", lcc_last_error());
    lcc_error("%s (reading sample %lld)", why, (long long)in->index);
  }
  return rc;
}

// ---- micro-batches ----

#define MAX_REPLACEMENTS 64   // positions tried after a corrupt sample before the micro-batch fails

// Reads the sample at stream position p into in (any earlier contents freed); *idx: its global index.
static void read_at(lcc_loader *l, int64_t p, lcc_pack_input *in, int64_t *idx) {
  lcc_sample_free(&in->s);
  free((void *)in->shard);
  memset(in, 0, sizeof *in);
  pthread_mutex_lock(&l->lock);
  *idx = index_at(l, p);
  pthread_mutex_unlock(&l->lock);
  in->ok = read_sample(l, *idx, in) == 0;
  if (!in->ok && l->o.skip_corrupt) fprintf(stderr, "loader: skipped %s; replaced by the next sample\n", lcc_last_error());
}

// Prepares the micro-batch at the given stream positions into sl (without holding lock). A sample that fails
// to read or decode is replaced by the one at the next position (skip_corrupt), and the batch packed again.
static void prepare(lcc_loader *l, const int64_t *positions, slot *sl) {
  const int M = l->o.micro_batch;
  lcc_pack_input *in = lcc_calloc((size_t)M, sizeof *in);
  int64_t *idx = lcc_malloc((size_t)M * sizeof(int64_t)), *at = lcc_malloc((size_t)M * sizeof(int64_t));
  sl->rc = 0, sl->skipped = 0;
  for (int j = 0; j < M; j++) at[j] = positions[j], read_at(l, at[j], &in[j], &idx[j]);
  for (int round = 0;; round++) {
    for (int j = 0; j < M && !sl->rc; j++)
      for (int tries = 0; !in[j].ok && !sl->rc; tries++) {
        if (!l->o.skip_corrupt) {
          sl->rc = -1;
        } else if (tries == MAX_REPLACEMENTS) {
          sl->rc = lcc_error("%s; and the %d samples after it could not be read either (stream position %lld): is the "
                             "dataset damaged? (livecc-prep --verify=DIR)", lcc_last_error(), MAX_REPLACEMENTS,
                             (long long)positions[j]);
        } else {   // read_at or lcc_pack_batch said why
          sl->skipped++;
          read_at(l, ++at[j], &in[j], &idx[j]);
        }
      }
    if (sl->rc || round > MAX_REPLACEMENTS) break;
    lcc_batch_free(&sl->batch);
    int64_t failed = 0;   // samples whose frames do not decode: their ok is cleared, and they are replaced above
    sl->rc = lcc_pack_batch(in, M, l->o.skip_corrupt, &sl->batch, &failed);
    if (sl->rc || !failed) break;
  }
  if (!sl->rc && sl->batch.b.n_samples != M) sl->rc = lcc_error("loader: a micro-batch kept failing to decode");
  if (!sl->rc) {
    sl->batch.sample_ids = lcc_malloc((size_t)M * sizeof(int64_t));
    memcpy(sl->batch.sample_ids, idx, (size_t)M * sizeof(int64_t));
  }
  if (sl->rc) snprintf(sl->err, sizeof sl->err, "%s", lcc_last_error());
  for (int j = 0; j < M; j++) {
    lcc_sample_free(&in[j].s);
    free((void *)in[j].shard);
  }
  free(in), free(idx), free(at);
}

static void *worker(void *arg) {
  lcc_loader *l = arg;
  int64_t *positions = lcc_malloc((size_t)l->o.micro_batch * sizeof(int64_t));
  pthread_mutex_lock(&l->lock);
  while (!l->stop) {
    if (l->next_claim >= l->next_return + l->n_slots) {   // every slot holds or awaits a micro-batch
      pthread_cond_wait(&l->changed, &l->lock);
      continue;
    }
    const int64_t k = l->next_claim++;
    slot *sl = &l->slots[k % l->n_slots];
    sl->state = SLOT_BUSY, sl->k = k;
    plan(l, k, positions);
    pthread_mutex_unlock(&l->lock);
    prepare(l, positions, sl);
    pthread_mutex_lock(&l->lock);
    sl->state = SLOT_READY;
    pthread_cond_broadcast(&l->changed);
  }
  pthread_mutex_unlock(&l->lock);
  free(positions);
  return NULL;
}

int lcc_loader_next(lcc_loader *l, lcc_owned_batch *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&l->lock);
  const int64_t k = l->next_return;
  slot *sl = &l->slots[k % l->n_slots];
  if (l->failed) {
    pthread_mutex_unlock(&l->lock);
    return lcc_error("%s", l->err);
  }
  if (!l->n_workers) {   // no threads: prepare it here
    int64_t *positions = lcc_malloc((size_t)l->o.micro_batch * sizeof(int64_t));
    plan(l, k, positions);
    pthread_mutex_unlock(&l->lock);
    prepare(l, positions, sl);
    free(positions);
    pthread_mutex_lock(&l->lock);
    sl->state = SLOT_READY, sl->k = k;
  }
  while (sl->state != SLOT_READY || sl->k != k) pthread_cond_wait(&l->changed, &l->lock);
  *out = sl->batch;
  memset(&sl->batch, 0, sizeof sl->batch);
  sl->state = SLOT_EMPTY;
  l->next_return++;
  l->skipped += sl->skipped;
  if (sl->rc) {
    l->failed = 1;
    snprintf(l->err, sizeof l->err, "%s", sl->err);
  }
  const int rc = sl->rc;
  pthread_cond_broadcast(&l->changed);
  pthread_mutex_unlock(&l->lock);
  return rc ? lcc_error("%s", l->err) : 0;   // l->err is never written again once failed is set
}

int64_t lcc_loader_consumed(const lcc_loader *l) {
  pthread_mutex_lock((pthread_mutex_t *)&l->lock);
  const int64_t c = l->consumed0 + l->next_return / l->o.grad_accum * l->G;
  pthread_mutex_unlock((pthread_mutex_t *)&l->lock);
  return c;
}

int64_t lcc_loader_skipped(const lcc_loader *l) {
  pthread_mutex_lock((pthread_mutex_t *)&l->lock);
  const int64_t s = l->skipped;
  pthread_mutex_unlock((pthread_mutex_t *)&l->lock);
  return s;
}

int64_t lcc_loader_samples(const lcc_loader *l) { return l->N; }

// ---- open and close ----

static int check_opts(const lcc_loader_opts *o, int64_t consumed) {
  if (!o->data) return lcc_error("loader: no data path given");
  if (o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
    return lcc_error("loader: rank %d is outside world size %d", o->rank, o->world_size);
  if (o->micro_batch < 1 || o->grad_accum < 1)
    return lcc_error("loader: micro_batch (%d) and grad_accum (%d) must be at least 1", o->micro_batch, o->grad_accum);
  if (o->threads < 0 || o->threads > 256) return lcc_error("loader: threads = %d is outside 0..256", o->threads);
  if (o->prefetch < 0 || o->max_open_shards < 1)
    return lcc_error("loader: prefetch (%d) must be >= 0 and max_open_shards (%d) >= 1", o->prefetch, o->max_open_shards);
  if (consumed < 0) return lcc_error("loader: consumed = %lld is negative", (long long)consumed);
  return 0;
}

// Opens shards in manifest order until one opens; -1 when it differs from o.expect (a damaged shard is
// left to the sample that needs it, which skips or names it).
static int compare_first_shard(lcc_loader *l) {
  for (int s = 0; s < l->m.n && !l->have_first && !l->mismatch; s++) {
    if (!l->m.shards[s].n_samples) continue;
    char *path = shard_path(l, s);
    get_shard(l, s, path);
    free(path);
  }
  return l->mismatch ? -1 : 0;
}

lcc_loader *lcc_loader_open(const lcc_loader_opts *o, int64_t consumed) {
  if (check_opts(o, consumed)) return NULL;
  lcc_loader *l = lcc_calloc(1, sizeof *l);
  l->o = *o;
  if (o->expect) l->expect = *o->expect, l->o.expect = &l->expect;
  if (lcc_manifest_load(o->data, &l->m)) {
    free(l);
    return NULL;
  }
  l->manifest = lcc_malloc(strlen(l->m.dir) + sizeof "/manifest.json");
  sprintf(l->manifest, "%s/manifest.json", l->m.dir);
  l->N = l->m.total_samples;
  if (l->N == 0 || l->N > UINT32_MAX) {
    if (l->N) lcc_error("%s: %lld samples; the loader handles at most 2^32 - 1", l->manifest, (long long)l->N);
    else lcc_error("%s: the dataset is empty (no samples)", l->manifest);
    lcc_manifest_free(&l->m);
    free(l->manifest), free(l);
    return NULL;
  }
  l->starts = lcc_malloc(((size_t)l->m.n + 1) * sizeof(int64_t));
  l->starts[0] = 0;
  for (int s = 0; s < l->m.n; s++) l->starts[s + 1] = l->starts[s] + l->m.shards[s].n_samples;
  l->G = (int64_t)o->micro_batch * o->grad_accum * o->world_size;
  l->consumed0 = consumed;
  l->order[0].epoch = l->order[1].epoch = -1;
  if (o->shuffle) epoch_perm(l, consumed / l->N);   // the first epoch's order, built now rather than on first use
  l->n_slots = o->prefetch > o->threads ? o->prefetch : o->threads > 0 ? o->threads : 1;
  l->slots = lcc_calloc((size_t)l->n_slots, sizeof(slot));
  l->open = lcc_calloc((size_t)o->max_open_shards, sizeof(open_shard));
  LCC_CHECK(!pthread_mutex_init(&l->lock, NULL) && !pthread_mutex_init(&l->h5, NULL) &&
            !pthread_cond_init(&l->changed, NULL), "pthread init failed");
  if (o->expect && compare_first_shard(l)) {
    lcc_loader_close(l);
    return NULL;
  }
  l->workers = lcc_calloc((size_t)o->threads + 1, sizeof(pthread_t));
  for (; l->n_workers < o->threads; l->n_workers++)
    LCC_CHECK(!pthread_create(&l->workers[l->n_workers], NULL, worker, l), "pthread_create failed");
  return l;
}

void lcc_loader_close(lcc_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->lock);
  l->stop = 1;
  pthread_cond_broadcast(&l->changed);
  pthread_mutex_unlock(&l->lock);
  for (int i = 0; i < l->n_workers; i++) LCC_CHECK(!pthread_join(l->workers[i], NULL), "pthread_join failed");
  for (int i = 0; i < l->n_slots; i++) lcc_batch_free(&l->slots[i].batch);
  for (int i = 0; i < l->n_open; i++) lcc_shard_close(l->open[i].s);
  free(l->order[0].perm), free(l->order[1].perm);
  pthread_mutex_destroy(&l->lock), pthread_mutex_destroy(&l->h5), pthread_cond_destroy(&l->changed);
  free(l->workers), free(l->slots), free(l->open), free(l->starts), free(l->manifest);
  lcc_manifest_free(&l->m);
  free(l);
}
