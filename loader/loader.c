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
//
// Datasets: a list of several numbers their samples and shards one after another (the shards of all of them
// in one list with global starts, so one LRU set of open files serves every dataset). A draw is (dataset d, its
// stream position q); one dataset draws (0, p), the order it always had. A replacement moves q on within d.
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"
#include "media.h"
#include "mix.h"
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
  uint32_t *perm;         // [n] the dataset's sample index at each position of its epoch
} epoch_order;

// One dataset of the data list.
typedef struct {
  char *name;             // as written in the list, for messages and metrics
  double weight;          // normalized share of the stream
  lcc_manifest m;
  char *manifest;         // path of its manifest.json, for messages
  int64_t n, offset;      // samples; global index of its first one (datasets numbered in list order)
  int first_shard;        // its first shard in the loader's list of all shards
  uint64_t seed;          // of its epoch permutations (dataset 0: the run's seed)
  epoch_order order[2];   // the two most recent epochs in use (guarded by the loader's lock)
  int have_first;         // guarded by h5 from here on
  lcc_shard_meta first;   // of its first shard opened: its other shards must agree with it
  int mismatch;           // its first shard to open differs from o.expect
} dataset;

// A sample to read: dataset d at position q of its own stream.
typedef struct {
  int d;
  int64_t q;
} draw;

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
  dataset *ds;            // [n_ds] in list order
  int n_ds;
  lcc_mix mix;            // the weighted schedule (n_ds > 1)
  int n_shards;           // of every dataset
  int64_t *starts;        // [n_shards + 1] global index of each shard's first sample
  int *shard_ds;          // [n_shards] the dataset of each shard
  int64_t N, G;           // samples per epoch (all datasets); positions per global batch
  int64_t consumed0;      // positions consumed before open

  pthread_mutex_t lock;   // guards what follows up to `h5`, and each dataset's order
  pthread_cond_t changed; // a slot changed state, a micro-batch was taken, or stop
  lcc_mix_block *blocks;  // [2] the two most recent schedule blocks in use (n_ds > 1)
  slot *slots;
  int n_slots;
  int64_t next_claim;     // next micro-batch a worker prepares
  int64_t next_return;    // next micro-batch lcc_loader_next returns
  int64_t skipped;
  int failed;             // an error was returned: every later call returns it again
  char err[1024];
  int stop;

  pthread_mutex_t h5;     // every HDF5 call, the open shards and each dataset's first shard's metadata
  open_shard *open;       // [max_open_shards]
  int n_open;
  uint64_t clock;

  pthread_t *workers;
  int n_workers;
};

// ---- order ----

// The permutation of epoch e of dataset d (caller holds lock); builds it over the older of d's two cached epochs.
static const uint32_t *epoch_perm(dataset *d, int64_t e) {
  for (int c = 0; c < 2; c++)
    if (d->order[c].epoch == e) return d->order[c].perm;
  epoch_order *o = &d->order[d->order[0].epoch < d->order[1].epoch ? 0 : 1];
  if (!o->perm) o->perm = lcc_malloc((size_t)d->n * sizeof(uint32_t));
  lcc_order_permutation(d->seed, e, o->perm, d->n);
  o->epoch = e;
  return o->perm;
}

// Schedule block k (caller holds lock); built over the older of the two cached blocks.
static const lcc_mix_block *schedule_block(lcc_loader *l, int64_t k) {
  for (int c = 0; c < 2; c++)
    if (l->blocks[c].k == k) return &l->blocks[c];
  lcc_mix_block *b = &l->blocks[l->blocks[0].k < l->blocks[1].k ? 0 : 1];
  lcc_mix_build(&l->mix, k, b);
  return b;
}

int lcc_loader_dataset_of(const lcc_loader *l, int64_t id) {
  if (id < 0 || id >= l->N) return -1;
  return l->shard_ds[lcc_order_shard_of(l->starts, l->n_shards, id)];
}

// The draw of stream position p (caller holds lock). One dataset: (0, p), what the schedule would give, without
// building its blocks. shuffle = 0: the datasets one after another, each sample once per epoch.
static draw draw_at(lcc_loader *l, int64_t p) {
  if (l->n_ds == 1) return (draw){0, p};
  if (!l->o.shuffle) {
    const int64_t i = p % l->N;
    const int d = lcc_loader_dataset_of(l, i);
    return (draw){d, p / l->N * l->ds[d].n + i - l->ds[d].offset};
  }
  const lcc_mix_block *b = schedule_block(l, p / LCC_MIX_BLOCK);
  const int j = (int)(p % LCC_MIX_BLOCK), d = b->label[j];
  return (draw){d, b->base[d] + b->rank[j]};
}

// The global index of draw w (caller holds lock).
static int64_t index_of(lcc_loader *l, draw w) {
  dataset *d = &l->ds[w.d];
  const int64_t i = w.q % d->n;
  return d->offset + (l->o.shuffle ? epoch_perm(d, w.q / d->n)[i] : i);
}

int64_t lcc_loader_index_at(lcc_loader *l, int64_t p) {
  if (p < 0) return -1;
  pthread_mutex_lock(&l->lock);
  const int64_t i = index_of(l, draw_at(l, p));
  pthread_mutex_unlock(&l->lock);
  return i;
}

void lcc_loader_drawn(const lcc_loader *l, int64_t p, int64_t *count) {
  if (l->n_ds == 1) {
    count[0] = p;
  } else if (l->o.shuffle) {
    lcc_mix_counts(&l->mix, p, count);
  } else {   // whole epochs of every dataset, then the datasets the last part reaches
    const int64_t i = p % l->N;
    for (int d = 0; d < l->n_ds; d++) {
      const int64_t part = i - l->ds[d].offset;
      count[d] = p / l->N * l->ds[d].n + (part < 0 ? 0 : part > l->ds[d].n ? l->ds[d].n : part);
    }
  }
}

int lcc_loader_datasets(const lcc_loader *l) { return l->n_ds; }

lcc_loader_dataset lcc_loader_dataset_info(const lcc_loader *l, int d) {
  const dataset *s = &l->ds[d];
  return (lcc_loader_dataset){s->name, s->weight, s->n, s->offset};
}

// Stream positions of this rank's micro-batch k.
static void plan(const lcc_loader *l, int64_t k, int64_t *positions) {
  const int64_t M = l->o.micro_batch, A = l->o.grad_accum;
  const int64_t start = l->consumed0 + k / A * l->G + l->o.rank * M * A + k % A * M;
  for (int64_t j = 0; j < M; j++) positions[j] = start + j;
}

// ---- shards ----

// Shard s's entry in its dataset's manifest.
static const lcc_manifest_entry *shard_entry(const lcc_loader *l, int s) {
  const dataset *d = &l->ds[l->shard_ds[s]];
  return &d->m.shards[s - d->first_shard];
}

static char *shard_path(const lcc_loader *l, int s) {
  const char *dir = l->ds[l->shard_ds[s]].m.dir, *file = shard_entry(l, s)->file;
  const size_t n = strlen(dir) + strlen(file) + 2;
  char *p = lcc_malloc(n);
  snprintf(p, n, "%s/%s", dir, file);
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

// Opens shard s and checks it against its manifest entry and its dataset's other shards (caller holds h5).
static lcc_shard *open_checked(lcc_loader *l, int s, const char *path) {
  const lcc_manifest_entry *e = shard_entry(l, s);
  dataset *d = &l->ds[l->shard_ds[s]];
  struct stat st;
  if (stat(path, &st)) {
    lcc_error("%s: %s (listed in %s)", path, strerror(errno), d->manifest);
    return NULL;
  }
  if ((int64_t)st.st_size != e->bytes) {
    lcc_error("%s: %lld bytes, but %s says %lld (truncated or rewritten? livecc-prep --verify=DIR checks every shard)",
              path, (long long)st.st_size, d->manifest, (long long)e->bytes);
    return NULL;
  }
  lcc_shard *sh = lcc_shard_open(path);
  if (!sh) return NULL;
  const lcc_shard_meta *m = lcc_shard_meta_of(sh);
  int rc = 0;
  if (lcc_shard_count(sh) != e->n_samples)
    rc = lcc_error("%s: %lld samples, but %s says %lld", path, (long long)lcc_shard_count(sh), d->manifest, (long long)e->n_samples);
  else if (m->tokenizer_hash != d->m.tokenizer_hash)
    rc = lcc_error("%s: tokenizer hash %016llx differs from the manifest's %016llx", path,
                   (unsigned long long)m->tokenizer_hash, (unsigned long long)d->m.tokenizer_hash);
  else if (d->have_first)
    rc = check_like_first(path, m, &d->first);
  else if (l->o.expect && check_expected(path, m, l->o.expect))
    rc = -1, d->mismatch = 1;
  else
    d->have_first = 1, d->first = *m;
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
  const int s = lcc_order_shard_of(l->starts, l->n_shards, idx);
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

// Reads the sample of draw w into in (any earlier contents freed); *idx: its global index.
static void read_at(lcc_loader *l, draw w, lcc_pack_input *in, int64_t *idx) {
  lcc_sample_free(&in->s);
  free((void *)in->shard);
  memset(in, 0, sizeof *in);
  pthread_mutex_lock(&l->lock);
  *idx = index_of(l, w);
  pthread_mutex_unlock(&l->lock);
  in->ok = read_sample(l, *idx, in) == 0;
  if (!in->ok && l->o.skip_corrupt) fprintf(stderr, "loader: skipped %s; replaced by the next sample\n", lcc_last_error());
}

// Prepares the micro-batch at the given stream positions into sl (without holding lock). A sample that fails
// to read or decode is replaced by the one at the next position of its dataset's stream (skip_corrupt), and the
// batch packed again.
static void prepare(lcc_loader *l, const int64_t *positions, slot *sl) {
  const int M = l->o.micro_batch;
  lcc_pack_input *in = lcc_calloc((size_t)M, sizeof *in);
  int64_t *idx = lcc_malloc((size_t)M * sizeof(int64_t));   // [M] global index of each sample
  draw *at = lcc_malloc((size_t)M * sizeof(draw));           // [M] each sample's draw (replacements move q on)
  sl->rc = 0, sl->skipped = 0;
  pthread_mutex_lock(&l->lock);
  for (int j = 0; j < M; j++) at[j] = draw_at(l, positions[j]);
  pthread_mutex_unlock(&l->lock);
  for (int j = 0; j < M; j++) read_at(l, at[j], &in[j], &idx[j]);
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
          at[j].q++;
          read_at(l, at[j], &in[j], &idx[j]);
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

// Opens each dataset's shards in manifest order until one opens; -1 when it differs from o.expect (a damaged
// shard is left to the sample that needs it, which skips or names it).
static int compare_first_shards(lcc_loader *l) {
  for (int d = 0; d < l->n_ds; d++) {
    dataset *ds = &l->ds[d];
    for (int s = ds->first_shard; s < ds->first_shard + ds->m.n && !ds->have_first && !ds->mismatch; s++) {
      if (!shard_entry(l, s)->n_samples) continue;
      char *path = shard_path(l, s);
      get_shard(l, s, path);
      free(path);
    }
    if (ds->mismatch) return -1;
  }
  return 0;
}

// 1 when dataset directories a and b are the same folder.
static int same_dir(const char *a, const char *b) {
  char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
  const int same = ra && rb ? !strcmp(ra, rb) : !strcmp(a, b);
  free(ra), free(rb);
  return same;
}

// Loads the manifest of list entry e as dataset d (after datasets 0..d-1): its samples, and that it is neither
// empty nor a repeat of an earlier entry, and tokenized like them.
static int load_dataset(lcc_loader *l, const lcc_mix_entry *e, int d) {
  dataset *s = &l->ds[d];
  s->name = lcc_strdup(e->path);
  s->order[0].epoch = s->order[1].epoch = -1;
  s->seed = l->o.seed ^ (uint64_t)d * 0x9E3779B97F4A7C15ull;   // dataset 0 keeps the run's seed: one dataset, one order
  if (lcc_manifest_load(e->path, &s->m)) return -1;
  s->manifest = lcc_malloc(strlen(s->m.dir) + sizeof "/manifest.json");
  sprintf(s->manifest, "%s/manifest.json", s->m.dir);
  s->n = s->m.total_samples;
  if (s->n == 0) return lcc_error("%s: the dataset is empty (no samples)", s->manifest);
  if (s->n > UINT32_MAX)
    return lcc_error("%s: %lld samples; the loader handles at most 2^32 - 1", s->manifest, (long long)s->n);
  for (int j = 0; j < d; j++) {
    if (same_dir(l->ds[j].m.dir, s->m.dir))
      return lcc_error("%s is listed twice (entries %d and %d): give it one entry with the sum of the weights", s->m.dir,
                       j + 1, d + 1);
  }
  if (d && s->m.tokenizer_hash != l->ds[0].m.tokenizer_hash)
    return lcc_error("%s: tokenizer hash %016llx, but %s has %016llx: the datasets of one list must be tokenized by the "
                     "same tokenizer", s->manifest, (unsigned long long)s->m.tokenizer_hash, l->ds[0].manifest,
                     (unsigned long long)l->ds[0].m.tokenizer_hash);
  return 0;
}

// The datasets of o.data, their weights, and every shard of them in one list with global sample starts.
static int open_datasets(lcc_loader *l) {
  lcc_mix_entry *e;
  int n;
  if (lcc_mix_parse(l->o.data, &e, &n)) return -1;
  l->ds = lcc_calloc((size_t)n, sizeof(dataset));
  int rc = 0;
  for (; l->n_ds < n && !rc; l->n_ds++) rc = load_dataset(l, &e[l->n_ds], l->n_ds);
  if (rc && n > 1) {   // a list: name the entry (the message may name only a file in it)
    char why[1024];
    snprintf(why, sizeof why, "%s", lcc_last_error());
    lcc_error("data entry %d '%s': %s", l->n_ds, e[l->n_ds - 1].path, why);
  }
  if (!rc && n > 1) rc = lcc_mix_init(&l->mix, e, n, l->o.seed);
  double sum = 0;
  for (int d = 0; d < n && !rc; d++) sum += e[d].weight;
  for (int d = 0; d < n && !rc; d++) l->ds[d].weight = e[d].weight / sum;
  lcc_mix_entries_free(e, n);
  if (rc) return -1;
  for (int d = 0; d < n; d++) {
    l->ds[d].first_shard = l->n_shards, l->ds[d].offset = l->N;
    l->n_shards += l->ds[d].m.n, l->N += l->ds[d].n;
  }
  l->starts = lcc_malloc(((size_t)l->n_shards + 1) * sizeof(int64_t));
  l->shard_ds = lcc_malloc(((size_t)l->n_shards + 1) * sizeof(int));
  l->starts[0] = 0;
  for (int d = 0, s = 0; d < n; d++)
    for (int i = 0; i < l->ds[d].m.n; i++, s++) {
      l->shard_ds[s] = d;
      l->starts[s + 1] = l->starts[s] + l->ds[d].m.shards[i].n_samples;
    }
  return 0;
}

// Builds what the first draws need now rather than on first use: each dataset's current epoch order.
static void build_first_orders(lcc_loader *l, int64_t consumed) {
  if (!l->o.shuffle) return;
  int64_t drawn[LCC_MIX_MAX];   // [n_ds] positions of [0, consumed) that drew each dataset
  lcc_loader_drawn(l, consumed, drawn);
  for (int d = 0; d < l->n_ds; d++) epoch_perm(&l->ds[d], drawn[d] / l->ds[d].n);
}

lcc_loader *lcc_loader_open(const lcc_loader_opts *o, int64_t consumed) {
  if (check_opts(o, consumed)) return NULL;
  lcc_loader *l = lcc_calloc(1, sizeof *l);
  l->o = *o;
  if (o->expect) l->expect = *o->expect, l->o.expect = &l->expect;
  LCC_CHECK(!pthread_mutex_init(&l->lock, NULL) && !pthread_mutex_init(&l->h5, NULL) &&
            !pthread_cond_init(&l->changed, NULL), "pthread init failed");
  l->blocks = lcc_malloc(2 * sizeof(lcc_mix_block));
  l->blocks[0].k = l->blocks[1].k = -1;
  if (open_datasets(l)) {
    lcc_loader_close(l);
    return NULL;
  }
  l->G = (int64_t)o->micro_batch * o->grad_accum * o->world_size;
  l->consumed0 = consumed;
  build_first_orders(l, consumed);
  l->n_slots = o->prefetch > o->threads ? o->prefetch : o->threads > 0 ? o->threads : 1;
  l->slots = lcc_calloc((size_t)l->n_slots, sizeof(slot));
  l->open = lcc_calloc((size_t)o->max_open_shards, sizeof(open_shard));
  if (o->expect && compare_first_shards(l)) {
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
  for (int d = 0; d < l->n_ds; d++) {
    dataset *s = &l->ds[d];
    free(s->order[0].perm), free(s->order[1].perm);
    free(s->name), free(s->manifest);
    lcc_manifest_free(&s->m);
  }
  pthread_mutex_destroy(&l->lock), pthread_mutex_destroy(&l->h5), pthread_cond_destroy(&l->changed);
  free(l->workers), free(l->slots), free(l->open), free(l->starts), free(l->shard_ds), free(l->blocks), free(l->ds);
  free(l);
}
