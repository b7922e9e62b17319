// Turns samples read from shards into one packed micro-batch: token ids, HF labels, vision items, and the
// normalized Qwen2-VL patch rows of their decoded frames.
#ifndef LCC_PACK_H
#define LCC_PACK_H

#include "batch.h"
#include "shard.h"

typedef struct {
  lcc_sample s;
  lcc_shard_meta meta;    // of the sample's shard (geometry, codec, mean and std)
  const char *shard;      // shard path and
  int64_t index;          // index inside it, for messages
  int ok;                 // 0: the sample could not be read; it is left out
} lcc_pack_input;

// Packs the readable samples of in[0..n) in order into out (which it allocates; lcc_batch_free frees).
// A sample whose frames fail to decode is left out, marked (ok = 0), reported on stderr and counted in
// *skipped when skip_corrupt is set; otherwise the call returns -1 with lcc_error() naming the shard, sample,
// item and frame.
int lcc_pack_batch(lcc_pack_input *in, int n, int skip_corrupt, lcc_owned_batch *out, int64_t *skipped);

#endif
