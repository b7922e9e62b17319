// Scale: a manifest of 5,000,000 samples in 2,000 shards (the shard files need not exist: the loader opens
// them lazily) opens, with the first epoch's permutation built, in under 10 s and 1 GB of resident memory.
// Prints the figures as a benchmark line. Also checks that epoch 0 is a permutation and the shard lookup.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "loader.h"
#include "order.h"
#include "shard.h"
#include "shard_fixture.h"
#include "testlib.h"
#include "util.h"

#define SHARDS 2000
#define PER_SHARD 2500
#define N ((int64_t)SHARDS * PER_SHARD)

static long vm_hwm_kb(void) {   // peak resident set of this process
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(void) {
  const char *dir = test_fresh_dir("scale");
  lcc_manifest m = {.dir = lcc_strdup(dir), .n = SHARDS, .tokenizer_hash = 1};
  m.shards = lcc_calloc(SHARDS, sizeof(lcc_manifest_entry));
  for (int i = 0; i < SHARDS; i++) {
    char name[64];
    snprintf(name, sizeof name, "shards/part-%05d.h5", i);
    m.shards[i] = (lcc_manifest_entry){lcc_strdup(name), PER_SHARD, 400000000, 0x1234567890abcdefull ^ (uint64_t)i};
  }
  LCC_CHECK(!lcc_manifest_write(&m), "%s", lcc_last_error());
  lcc_manifest_free(&m);
  const long hwm0 = vm_hwm_kb();

  const double t0 = lcc_now();
  lcc_loader_opts o = {.data = dir, .seed = 1234, .shuffle = 1, .world_size = 64, .rank = 5, .micro_batch = 1,
                       .grad_accum = 4, .threads = 0, .prefetch = 4, .max_open_shards = 16};
  lcc_loader *l = lcc_loader_open(&o, 0);
  const double t_open = lcc_now() - t0;
  LCC_CHECK(l, "%s", lcc_last_error());
  const long hwm1 = vm_hwm_kb();
  CHECK(lcc_loader_samples(l) == N);

  uint8_t *seen = lcc_calloc((size_t)N, 1);
  int perm_ok = 1;
  for (int64_t p = 0; p < N; p++) {
    const int64_t i = lcc_loader_index_at(l, p);
    if (i < 0 || i >= N || seen[i]) perm_ok = 0;
    else seen[i] = 1;
  }
  CHECK(perm_ok);
  free(seen);
  const double t1 = lcc_now();
  const int64_t first_of_epoch1 = lcc_loader_index_at(l, N);   // builds epoch 1's permutation
  const double t_epoch = lcc_now() - t1;
  CHECK(first_of_epoch1 >= 0 && first_of_epoch1 < N);
  lcc_loader_close(l);

  int64_t starts[SHARDS + 1];
  for (int s = 0; s <= SHARDS; s++) starts[s] = (int64_t)s * PER_SHARD;
  for (int64_t i = 0; i < N; i += 99991) CHECK(lcc_order_shard_of(starts, SHARDS, i) == i / PER_SHARD);
  CHECK(lcc_order_shard_of(starts, SHARDS, N - 1) == SHARDS - 1);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("bench: loader open, %lld samples in %d shards: %.3f s; next epoch's permutation %.3f s; "
         "VmHWM %.0f MB before open, %.0f MB after (ru_maxrss %.0f MB at exit)\n",
         (long long)N, SHARDS, t_open, t_epoch, hwm0 / 1024.0, hwm1 / 1024.0, ru.ru_maxrss / 1024.0);
  CHECK(t_open < 10.0);
  CHECK(hwm1 < 1024 * 1024);
  return test_finish("test_loader_scale");
}
