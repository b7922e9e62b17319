// The video reader's decode that leaves out frames no pick needs (media_video.c, skip_allowed: non-reference
// frames that are not picked) against the plain decode of every frame (LCC_MEDIA_FULL_DECODE=1): the same
// frames byte for byte with the same pts, for strict and uniform picks over whole files and windows that seek
// into the middle, on moving pictures coded
//  - with non-reference frames: MPEG-4 part 2, MPEG-1/2 with B-frames, x264 with B-frames (a B-pyramid:
//    reference and non-reference B-frames), x265 with B-frames;
//  - without: the same encoders with no B-frames (every frame a reference: nothing may be left out);
//  - in containers whose packets carry no pts (AVI: no skipping there) and where the seek to the first pick
//    lands past it (MPEG-TS with x264: the reader starts again from the top and decodes every frame).
// Encoders this FFmpeg lacks (libx264, libx265) are reported and left out.
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "util.h"

static int read_clip(const char *path, int uniform, double start, double end, int full, lcc_frames *f) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  if (full) setenv("LCC_MEDIA_FULL_DECODE", "1", 1);
  else unsetenv("LCC_MEDIA_FULL_DECODE");
  int rc = uniform ? lcc_video_read_uniform(path, start, end, &b, f) : lcc_video_read_strict(path, start, end, &b, f);
  unsetenv("LCC_MEDIA_FULL_DECODE");
  return rc;
}

// Both decodes succeed and agree on every byte and timestamp.
static void compare(const char *name, const char *path, int uniform, double start, double end) {
  lcc_frames fast, full;
  int rf = read_clip(path, uniform, start, end, 0, &fast);
  if (!CHECKF(rf == 0, "%s: %s", name, lcc_last_error())) return;
  int rp = read_clip(path, uniform, start, end, 1, &full);
  if (CHECKF(rp == 0, "%s: %s", name, lcc_last_error()) &&
      CHECKF(fast.T == full.T && fast.h == full.h && fast.w == full.w, "%s %s [%g, %g]: %d %dx%d vs %d %dx%d", name,
             uniform ? "uniform" : "strict", start, end, fast.T, fast.w, fast.h, full.T, full.w, full.h)) {
    size_t frame = (size_t)fast.h * fast.w * 3;
    for (int i = 0; i < fast.T; i++) {
      CHECKF(!memcmp(fast.rgb + i * frame, full.rgb + i * frame, frame), "%s %s [%g, %g]: frame %d differs", name,
             uniform ? "uniform" : "strict", start, end, i);
      CHECKF(fast.pts[i] == full.pts[i], "%s: pts %d: %.9g vs %.9g", name, i, fast.pts[i], full.pts[i]);
    }
    lcc_frames_free(&full);
  }
  lcc_frames_free(&fast);
}

typedef struct {
  const char *file;      // the extension picks the container
  const char *encoder;   // FFmpeg encoder name
  const char *opts;      // "key=value;..." or NULL
  int bframes;
  int whole;             // whole-file reads work in this container (AVI with B-frames: only windows)
} clip;

int main(void) {
  test_tmpdir_init();
  av_log_set_level(AV_LOG_FATAL);   // not the encoders' statistics, nor the decoder's notes after a bad seek
  const clip clips[] = {
      {"mpeg4_b2.mp4", "mpeg4", "flags=+qscale;global_quality=354", 2, 1},
      {"mpeg4_b0.mp4", "mpeg4", "flags=+qscale;global_quality=354", 0, 1},
      {"mpeg4_b2.mkv", "mpeg4", "flags=+qscale;global_quality=354", 2, 1},
      {"mpeg4_b2.avi", "mpeg4", "flags=+qscale;global_quality=354", 2, 0},
      {"mpeg2_b2.mkv", "mpeg2video", "flags=+qscale;global_quality=354", 2, 1},
      {"mpeg1_b2.mkv", "mpeg1video", "flags=+qscale;global_quality=354", 2, 1},
      {"x264_b3.mp4", "libx264", "preset=veryfast", 3, 1},
      {"x264_pyr.mkv", "libx264", "preset=medium;b-pyramid=strict", 5, 1},
      {"x264_b0.mp4", "libx264", "preset=veryfast", 0, 1},
      {"x264_b3.ts", "libx264", "preset=veryfast", 3, 1},
      {"x264_b3.avi", "libx264", "preset=veryfast", 3, 0},
      {"x265_b4.mp4", "libx265", "preset=veryfast;x265-params=log-level=error", 4, 1},
  };
  for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) {
    const clip *c = &clips[i];
    char path[1200];
    snprintf(path, sizeof path, "%s", tmp_path(c->file));
    // 4 s at 30 fps, 160 x 96 (resized up to the clip's smart_resize size).
    if (write_test_video_with(path, c->encoder, c->opts, 160, 96, 30, 120, c->bframes)) {
      printf("note: no %s encoder in this FFmpeg: %s left out\n", c->encoder, c->file);
      continue;
    }
    if (c->whole) {
      compare(c->file, path, 0, 0, -1);
      compare(c->file, path, 1, 0, -1);
    }
    compare(c->file, path, 0, 1.3, 3.1);
    compare(c->file, path, 0, 2.05, 2.6);
    compare(c->file, path, 1, 1.0, 3.5);
  }
  return test_finish("test_media_decode");
}
