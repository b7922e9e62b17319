// libFuzzer target: the input is a whole shard file. It is written to a temporary file (lcc_shard_open takes
// a path), opened, and every sample read (the first 256 of a larger shard), so ASan checks the reader's
// offsets, bounds and checks against whatever the file claims. HDF5 itself is not instrumented.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shard.h"
#include "util.h"

static volatile uint64_t sink;   // keeps the reads of the returned data from being optimized away

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[256];
  if (!path[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz_shard_%ld.h5", dir && *dir ? dir : "/tmp", (long)getpid());
  }
  FILE *f = fopen(path, "wb");
  LCC_CHECK(f && fwrite(data, 1, size, f) == size && !fclose(f), "cannot write %s", path);
  lcc_shard *s = lcc_shard_open(path);
  const int64_t n = s ? lcc_shard_count(s) : 0;
  for (int64_t i = 0; i < n && i < 256; i++) {
    lcc_sample x;
    if (lcc_shard_read(s, i, &x)) continue;
    uint64_t sum = 0;   // touch every byte the reader returned
    for (int t = 0; t < x.n_tokens; t++) sum += (uint64_t)x.ids[t] + x.mask[t];
    for (int k = 0; k < x.n_items; k++) sum += (uint64_t)x.items[k].first_pad;
    for (int64_t b = 0; b < x.frame_off[x.n_frames]; b++) sum += x.frame_data[b];
    for (const char *c = x.source; *c; c++) sum += (uint8_t)*c;
    sink += sum;
    lcc_sample_free(&x);
  }
  lcc_shard_close(s);
  unlink(path);
  return 0;
}
