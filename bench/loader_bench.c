// Loader open time and resident memory, and throughput: samples/s of lcc_loader_next (read, JPEG decode,
// patch rows) for 1 and 2 background threads. Uses the dataset in DIR, or when DIR has no manifest.json, first writes a synthetic one there
// (shard_fixture.h's sample mix with 448-pixel grids: 2.3 frames of 448x448 or 448x896 per sample on
// average, JPEG quality 90).
//   loader_bench DIR [samples per run (default 64)] [max threads (default 2)]
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "loader.h"
#include "shard_fixture.h"
#include "util.h"

#define GRID 32   // 448 pixels

static void make_dataset(const char *dir) {
  lcc_shard_meta m;
  fx_meta(&m, LCC_CODEC_JPEG);
  const int counts[4] = {24, 24, 24, 24};
  const double t0 = lcc_now();
  LCC_CHECK(!fx_dataset(dir, counts, 4, &m, GRID), "%s", lcc_last_error());
  printf("wrote a synthetic JPEG dataset of 96 samples in %s (%.1f s)\n", dir, lcc_now() - t0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [samples per run] [max threads]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  const int samples = argc > 2 ? atoi(argv[2]) : 64, max_threads = argc > 3 ? atoi(argv[3]) : 2;
  char manifest[4200];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", dir);
  struct stat st;
  if (stat(manifest, &st)) {
    mkdir(dir, 0755);
    make_dataset(dir);
  }
  for (int threads = 1; threads <= max_threads; threads++) {
    lcc_loader_opts o = {.data = dir, .seed = 3, .shuffle = 1, .world_size = 1, .micro_batch = 1, .grad_accum = 1,
                         .threads = threads, .prefetch = 2 * threads, .max_open_shards = 8};
    const long rss0 = lcc_rss_mb();
    const double t_open = lcc_now();
    lcc_loader *l = lcc_loader_open(&o, 0);
    if (!l) {
      fprintf(stderr, "%s\n", lcc_last_error());
      return 1;
    }
    printf("bench: loader open: %.3f s for %lld samples, resident memory +%ld MB (%ld MB in all)\n", lcc_now() - t_open,
           (long long)lcc_loader_samples(l), lcc_rss_mb() - rss0, lcc_rss_mb());
    int64_t patches = 0, tokens = 0;
    const double t0 = lcc_now();
    for (int i = 0; i < samples; i++) {
      lcc_owned_batch ob;
      if (lcc_loader_next(l, &ob)) {
        fprintf(stderr, "%s\n", lcc_last_error());
        return 1;
      }
      patches += ob.b.n_patches, tokens += ob.b.n_tokens;
      lcc_batch_free(&ob);
    }
    const double dt = lcc_now() - t0;
    printf("bench: loader, %d thread%s: %.1f samples/s, %.0f patch rows/s, %.0f tokens/s (%d samples in %.2f s)\n", threads,
           threads > 1 ? "s" : "", samples / dt, patches / dt, tokens / dt, samples, dt);
    lcc_loader_close(l);
  }
  return 0;
}
