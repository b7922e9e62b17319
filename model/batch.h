// Batches that own their memory: built by the synthetic generator, loaded from or saved to safetensors
// (tensors input_ids, labels, pixel_values, grid_thw, item_kind, sample_start: the format of the
// reference fixtures in tests/fixtures and of bench/torch_train_step.py).
#ifndef LCC_BATCH_H
#define LCC_BATCH_H

#include <stdint.h>

#include "model.h"

typedef struct {
  lcc_batch b;                  // views into the arrays below
  int32_t *ids, *labels, *sample_start;
  lcc_vision_item *items;
  float *pixels;
  int64_t *sample_ids;          // [n_samples] where each sample came from: its global sample index (loader) or
                                // stream position (synthetic); NULL when unknown (a batch file)
} lcc_owned_batch;

void lcc_batch_free(lcc_owned_batch *ob);
// Points ob->b at the owned arrays (after filling or resizing them).
void lcc_batch_bind(lcc_owned_batch *ob, int n_samples, int n_tokens, int n_items, int n_patches);
int lcc_batch_load(lcc_owned_batch *ob, const char *path, int patch_dim);
int lcc_batch_save(const lcc_owned_batch *ob, const char *path, int patch_dim);

// LiveCC-shaped synthetic samples with random tokens and pixels: a system turn, then `chunks` rounds of
// a user turn (Time= text, one video chunk: (3, gh, gw) for the first round with context text after it,
// (1, gh, gw) after that) and an assistant turn of `words` text tokens, the " ..." token and <|im_end|>.
// Labels follow LiveCC: assistant content and its <|im_end|>. Special ids come from the config
// (<|im_start|> = bos + 1, as in Qwen2's vocabulary). Sample k of the stream depends only on (seed, k):
// the batch holds samples first .. first + n - 1, whoever asks for them.
typedef struct {
  int chunks, grid_h, grid_w, words;
} lcc_synth_shape;

void lcc_batch_synthetic(lcc_owned_batch *ob, const lcc_config *cfg, const lcc_synth_shape *shape, uint64_t seed,
                         int64_t first, int n);

#endif
