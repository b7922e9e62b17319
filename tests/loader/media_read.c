// Reads one clip with lcc_media and reports it: the timing tool of bench/media_decode.sh and the C side of
// tests/reference/check_video_vs_decord.py.
// Usage: media_read [--uniform] VIDEO [START END] [--out FRAMES.raw]
//   prints "frames T size WxH seconds S" then the T frame end times; --out writes the [T, H, W, 3] RGB bytes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "util.h"

int main(int argc, char **argv) {
  const char *video = NULL, *out = NULL;
  double times[2] = {0, -1};
  int uniform = 0, ntimes = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--uniform")) uniform = 1;
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!video) video = argv[i];
    else if (ntimes < 2) times[ntimes++] = atof(argv[i]);
    else video = NULL, i = argc;   // too many arguments
  }
  if (!video || ntimes == 1) {
    fprintf(stderr, "usage: %s [--uniform] VIDEO [START END] [--out FRAMES.raw]\n", argv[0]);
    return 2;
  }
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  double t0 = lcc_now();
  int rc = uniform ? lcc_video_read_uniform(video, times[0], times[1], &b, &f)
                   : lcc_video_read_strict(video, times[0], times[1], &b, &f);
  if (rc) {
    fprintf(stderr, "%s\n", lcc_last_error());
    return 1;
  }
  printf("frames %d size %dx%d seconds %.3f\n", f.T, f.w, f.h, lcc_now() - t0);
  for (int i = 0; i < f.T; i++) printf("%.9g%c", f.pts[i], i + 1 < f.T ? ' ' : '\n');
  if (out) {
    FILE *fp = fopen(out, "wb");
    size_t n = (size_t)f.T * f.h * f.w * 3;
    if (!fp || fwrite(f.rgb, 1, n, fp) != n || fclose(fp)) {
      fprintf(stderr, "%s: cannot write\n", out);
      return 1;
    }
  }
  lcc_frames_free(&f);
  return 0;
}
