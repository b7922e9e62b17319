// Shared pieces of the livecc-prep tests: a scratch directory, real FFmpeg-encoded media made with the
// ffmpeg CLI, small files, default job options (the tiny tokenizer), and reading a prepared shard back.
#ifndef LCC_PREP_UTIL_H
#define LCC_PREP_UTIL_H

#include <stdio.h>

#include "prep.h"
#include "shard.h"

extern int failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

#define TINY_TOKENIZER "configs/tokenizer/tiny/tokenizer.json"

// $TEST_TMPDIR/<name> (or /tmp/livecc-prep-tests/<name>), emptied and created; returns a static copy.
const char *pu_dir(const char *name);
// dir/name in out.
void pu_path(char *out, size_t cap, const char *dir, const char *name);
// A testsrc2 video of w x h pixels at fps frames per second, `seconds` long, MPEG-4 part 2 in MP4.
void pu_video(const char *path, int w, int h, int fps, double seconds);
// One testsrc2 picture as PNG.
void pu_image(const char *path, int w, int h);
void pu_write(const char *path, const char *text);
char *pu_read(const char *path);   // NUL-terminated; aborts when missing

// Defaults for the tests: the tiny tokenizer, LiveCC's budget except min_pixels = 3136 (so small test
// videos keep their size), 1 worker, no progress line.
void pu_opts(lcc_prep_opts *o, const char *const *inputs, int n_inputs, const char *out);
// Runs the job with stderr captured into dir/stderr.txt; returns lcc_prep_run's result.
int pu_run(const lcc_prep_opts *o, lcc_prep_stats *st, const char *dir);
// Sample i of the shard file.
void pu_shard_sample(const char *shard, int64_t i, lcc_sample *out);

#endif
