// The training loader: batches of this rank from HDF5 shards, in a global order that does not depend on
// the world size, prepared by background threads (read, decode frames, build normalized patch rows).
//
// Order: epoch e visits a permutation of all samples drawn from (seed, e); the stream of global sample
// positions is epoch after epoch. Global batch b covers stream positions [b*G, (b+1)*G) with
// G = micro_batch * grad_accum * world_size; rank r takes the G/world_size positions starting at
// b*G + r*micro_batch*grad_accum, as grad_accum micro-batches of micro_batch samples. So 1 rank with
// grad_accum*W micro-batches sees exactly the samples that W ranks see together.
// State: the number of global stream positions consumed; restoring it gives the same next batches.
// Corrupt samples (skip_corrupt): the sample at position p is replaced by the first readable one at p+1,
// p+2, ... (a function of the data, so resume stays exact; it may repeat a sample within an epoch).
//
// Several datasets with weights (data = "DIR_A:0.7, DIR_B:0.3", mix.h): position p draws dataset d and d's own
// stream position q from (seed, weights, p) alone (mix.h's block schedule; q = the earlier positions that drew
// d), and d's stream is its own epochs, each a permutation of its N_d samples from (seed ^ d * golden ratio,
// epoch): each dataset cycles through its epochs at its own pace. Sample ids number the datasets one after
// another in list order (dataset d's sample i is offset_d + i). A corrupt sample of d is replaced within d's
// stream (q+1, q+2, ...), so every position keeps its dataset and the per-dataset counts are the schedule's.
// One dataset (with or without a weight) is the order above unchanged. shuffle = 0 reads the datasets one
// after another, every sample once per epoch (held-out evaluation), whatever the weights.
#ifndef LCC_LOADER_H
#define LCC_LOADER_H

#include <stdint.h>

#include "batch.h"
#include "config.h"
#include "tokenizer.h"

// What the run's model and tokenizer need of the shards. lcc_loader_open compares the first shard that opens
// with it, and fails naming both values where they differ: a patch-8 model on patch-14 shards would misread
// every pixel row, another tokenizer's ids are another text. (Later shards must match the first; one that
// does not is treated as damaged.)
typedef struct {
  char model[512], tokenizer[512];                   // names for the messages
  int patch_size, merge_size, temporal_patch_size;   // the vision tower's
  float image_mean[3], image_std[3];                 // the normalization its weights expect
  int vocab_size;                                    // embedding rows: the shards' tokenizer may have fewer ids, not more
  uint64_t tokenizer_hash;                           // 0: no tokenizer given, not compared
} lcc_data_expect;

// The expectation of model config cfg (named `model`) and, when tk is not NULL, of tokenizer tk (named `tokenizer`).
void lcc_data_expect_of(const lcc_config *cfg, const char *model, const lcc_tokenizer *tk, const char *tokenizer,
                        lcc_data_expect *e);

typedef struct {
  const char *data;       // manifest.json or its directory, or a list "PATH:WEIGHT, PATH:WEIGHT, ..." (mix.h)
  uint64_t seed;
  int shuffle;            // 0: the order of the manifest (held-out evaluation)
  int world_size, rank;
  int micro_batch, grad_accum;
  int threads;            // background workers
  int prefetch;           // micro-batches prepared ahead
  int skip_corrupt;       // 1: replace a sample that fails to read or decode by the next position's, and count
                          // it; 0: error naming shard and sample
  int max_open_shards;    // open file handles kept (LRU)
  const lcc_data_expect *expect;   // NULL: shards are not compared with a model (tools, tests)
} lcc_loader_opts;

typedef struct lcc_loader lcc_loader;

// Opens the manifest (and, with o->expect, the first shard to compare it; the rest open lazily).
// consumed: stream positions already consumed (resume).
lcc_loader *lcc_loader_open(const lcc_loader_opts *o, int64_t consumed);
void lcc_loader_close(lcc_loader *l);
int64_t lcc_loader_samples(const lcc_loader *l);     // samples per epoch (of all datasets together)
// This rank's next micro-batch: tokens, HF labels (-100 outside the loss mask), vision items, patch rows.
// Returns 0, or -1 with lcc_error() naming the shard and sample (skip_corrupt = 0).
int lcc_loader_next(lcc_loader *l, lcc_owned_batch *out);
int64_t lcc_loader_consumed(const lcc_loader *l);    // global positions consumed by whole global batches so far
int64_t lcc_loader_skipped(const lcc_loader *l);     // samples replaced as corrupt (skip_corrupt = 1)
// The global sample index at stream position p (for tests and tools).
int64_t lcc_loader_index_at(lcc_loader *l, int64_t p);

// The datasets of the data list, in its order.
typedef struct {
  const char *name;       // as written in the list (its path)
  double weight;          // normalized: its share of the stream positions
  int64_t samples;        // per epoch of it
  int64_t first_id;       // global index of its sample 0
} lcc_loader_dataset;
int lcc_loader_datasets(const lcc_loader *l);
lcc_loader_dataset lcc_loader_dataset_info(const lcc_loader *l, int d);
int lcc_loader_dataset_of(const lcc_loader *l, int64_t id);   // the dataset of global index id; -1 outside
// count[0..datasets): the samples that stream positions [0, p) draw from each dataset (closed form: O(256 +
// datasets); with replacements inside a dataset these are also the samples trained on).
void lcc_loader_drawn(const lcc_loader *l, int64_t p, int64_t *count);

#endif
