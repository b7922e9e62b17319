// Shared pieces of the livecc-prep tests: real FFmpeg-encoded media made with the ffmpeg CLI, default job
// options (the tiny tokenizer), running the job, and reading a prepared shard back. The scratch directory
// and the checks are testlib.h's.
#ifndef LCC_PREP_UTIL_H
#define LCC_PREP_UTIL_H

#include <stdio.h>

#include "prep.h"
#include "shard.h"

#define TINY_TOKENIZER "configs/tokenizer/tiny/tokenizer.json"

// dir/name in out.
void pu_path(char *out, size_t cap, const char *dir, const char *name);
// A testsrc2 video of w x h pixels at fps frames per second, `seconds` long, MPEG-4 part 2 in MP4.
void pu_video(const char *path, int w, int h, int fps, double seconds);
// One testsrc2 picture as PNG.
void pu_image(const char *path, int w, int h);
char *pu_read(const char *path);   // NUL-terminated; aborts when missing

// Defaults for the tests: the tiny tokenizer, LiveCC's budget except min_pixels = 3136 (so small test
// videos keep their size), 1 worker, no progress line.
void pu_opts(lcc_prep_opts *o, const char *const *inputs, int n_inputs, const char *out);
// Runs the job with stderr captured into dir/stderr.txt; returns lcc_prep_run's result.
int pu_run(const lcc_prep_opts *o, lcc_prep_stats *st, const char *dir);
// Sample i of the shard file.
void pu_shard_sample(const char *shard, int64_t i, lcc_sample *out);

#endif
