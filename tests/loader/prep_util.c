#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prep_util.h"
#include "util.h"

static void run_cmd(const char *cmd) {
  if (system(cmd) != 0) lcc_fatal("command failed: %s", cmd);
}

void pu_path(char *out, size_t cap, const char *dir, const char *name) { lcc_pathf(out, cap, "%s/%s", dir, name); }

void pu_video(const char *path, int w, int h, int fps, double seconds) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "ffmpeg -v error -y -f lavfi -i testsrc2=size=%dx%d:rate=%d:duration=%g -c:v mpeg4 -q:v 2 -pix_fmt yuv420p '%s'",
           w, h, fps, seconds, path);
  run_cmd(cmd);
}

void pu_image(const char *path, int w, int h) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -f lavfi -i testsrc2=size=%dx%d:rate=1 -frames:v 1 '%s'", w, h, path);
  run_cmd(cmd);
}

char *pu_read(const char *path) {
  char *s = lcc_read_file(path, NULL);
  LCC_CHECK(s, "%s", lcc_last_error());
  return s;
}

void pu_opts(lcc_prep_opts *o, const char *const *inputs, int n_inputs, const char *out) {
  memset(o, 0, sizeof *o);
  o->inputs = inputs, o->n_inputs = n_inputs, o->output = out, o->tokenizer = TINY_TOKENIZER;
  o->il = (lcc_interleave_opts){.fps = 2, .with_context = 1, .system_prompt = "You are a helpful assistant.",
                                .max_seq_len = 32768};
  lcc_video_budget_default(&o->budget);
  o->budget.min_pixels = 3136;
  o->workers = 1, o->samples_per_shard = 2500, o->codec = LCC_CODEC_JPEG, o->jpeg_quality = 90;
  o->video_root = "", o->settings = "test\n";
}

int pu_run(const lcc_prep_opts *o, lcc_prep_stats *st, const char *dir) {
  char log[1100];
  pu_path(log, sizeof log, dir, "stderr.txt");
  fflush(stderr);
  int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  LCC_CHECK(saved >= 0 && fd >= 0 && dup2(fd, 2) >= 0, "cannot redirect stderr to %s", log);
  int rc = lcc_prep_run(o, st);
  fflush(stderr);
  LCC_CHECK(dup2(saved, 2) >= 0, "cannot restore stderr");
  close(fd), close(saved);
  return rc;
}

void pu_shard_sample(const char *shard, int64_t i, lcc_sample *out) {
  lcc_shard *s = lcc_shard_open(shard);
  LCC_CHECK(s, "%s", lcc_last_error());
  LCC_CHECK(lcc_shard_read(s, i, out) == 0, "%s", lcc_last_error());
  lcc_shard_close(s);
}
