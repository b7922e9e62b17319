// Synthetic shards for the shard and loader tests and the loader benchmark: small samples that carry their
// global index ("tag") as the first token, with images, video chunks and text-only samples mixed.
#ifndef LCC_SHARD_FIXTURE_H
#define LCC_SHARD_FIXTURE_H

#include <stdint.h>

#include "shard.h"

#define FX_IMAGE_PAD 151655
#define FX_VIDEO_PAD 151656

// Qwen2-VL geometry (patch 14, merge 2, temporal 2), CLIP mean/std, the given frame codec.
void fx_meta(lcc_shard_meta *m, int codec);
// The raw picture of frame `frame` of sample `tag`: [H, W, 3] RGB, smooth with some texture.
void fx_frame(int64_t tag, int frame, int H, int W, uint8_t *rgb);
// Sample `tag`, its item grids scaled by `grid` (even): tag % 3 == 0: an image (1, g, g) and a video chunk
// (1, g, 2g); 1: a video chunk (2, g, g); 2: text only. Frames encoded with m's codec.
void fx_sample(lcc_sample *s, const lcc_shard_meta *m, int64_t tag, int grid);
// Writes counts[i] samples into <dir>/shard-<i>.h5 (tags 0, 1, ... across the shards) and the manifest.
// Returns 0 or -1 with lcc_error().
int fx_dataset(const char *dir, const int *counts, int n_shards, const lcc_shard_meta *m, int grid);

#endif
