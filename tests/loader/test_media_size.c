// smart_resize and the per-clip pixel budget against hand-computed sizes (QWEN2VL.md 1.2, LIVECC.md 3.3),
// and basic resize properties (same size copies, flat pictures stay flat).
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "util.h"

static void expect_size(int h, int w, long min_px, long max_px, int want_h, int want_w) {
  int oh = -1, ow = -1;
  CHECK(lcc_smart_resize(h, w, 28, min_px, max_px, &oh, &ow) == 0);
  CHECKF(oh == want_h && ow == want_w, "smart_resize(%d, %d) = (%d, %d), want (%d, %d)", h, w, oh, ow, want_h, want_w);
}

static void test_smart_resize(void) {
  const long lo = 28 * 28, hi = 16384L * 28 * 28;
  expect_size(56, 84, lo, hi, 56, 84);     // already multiples of 28
  expect_size(42, 56, lo, hi, 56, 56);     // 42/28 = 1.5 rounds to 2
  expect_size(70, 56, lo, hi, 56, 56);     // 2.5 rounds half to even: 2
  expect_size(98, 56, lo, hi, 112, 56);    // 3.5 -> 4
  expect_size(10, 2000, lo, hi, 28, 1988); // ratio exactly 200 is allowed; a side below 28 becomes 28
  // max branch: 1092 x 1932 > 602112, beta = sqrt(1080*1920/602112) = 1.8558 -> floor(20.78), floor(36.95)
  expect_size(1080, 1920, 78400, 602112, 560, 1008);
  // min branch: 112 x 112 < 78400, beta = sqrt(78400/10000) = 2.8 -> ceil(10.0) both ways
  expect_size(100, 100, 78400, 602112, 280, 280);
  // floor branch ending below min_pixels: beta = sqrt(2073600/82320) = 5.019 -> 7 x 13 blocks = 71344 px
  expect_size(1080, 1920, 78400, 82320, 196, 364);

  int oh, ow;
  CHECK(lcc_smart_resize(10, 2010, 28, lo, hi, &oh, &ow) == -1);
  CHECK(strstr(lcc_last_error(), "aspect ratio") != NULL);
  CHECK(lcc_smart_resize(0, 100, 28, lo, hi, &oh, &ow) == -1);
  CHECK(strstr(lcc_last_error(), "zero side") != NULL);
}

// LIVECC.md 3.3's worked table: (source, clip seconds at 2 fps) -> resized size.
static void test_clip_budget(void) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  CHECK(lcc_video_max_pixels(&b, 60) == 602112);    // min(602112, 642252.8)
  CHECK(lcc_video_max_pixels(&b, 120) == 321126);   // 19267584 / 120 * 2 = 321126.4
  CHECK(lcc_video_max_pixels(&b, 480) == 82320);    // max(80281.6, int(78400 * 1.05))
  struct { int h, w, seconds, oh, ow; } rows[] = {
      {720, 1280, 30, 560, 1008}, {720, 1280, 60, 420, 728}, {720, 1280, 120, 280, 532}, {720, 1280, 240, 196, 364},
      {1080, 1920, 30, 560, 1008}, {1080, 1920, 60, 420, 728}, {1080, 1920, 120, 280, 532},
      {1080, 1920, 240, 196, 364}, {360, 640, 30, 364, 644},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    int oh = -1, ow = -1;
    CHECK(lcc_video_clip_size(&b, rows[i].h, rows[i].w, rows[i].seconds * 2, &oh, &ow) == 0);
    CHECKF(oh == rows[i].oh && ow == rows[i].ow, "%dx%d %d s -> %dx%d, want %dx%d", rows[i].w, rows[i].h, rows[i].seconds,
           ow, oh, rows[i].ow, rows[i].oh);
  }
}

static void test_resize_basics(void) {
  int h = 37, w = 53;
  uint8_t *src = lcc_malloc((size_t)h * w * 3), *dst = lcc_malloc(90 * 90 * 3);
  natural_picture(src, h, w, 7);
  lcc_resize_bicubic(src, h, w, dst, h, w);
  CHECK(memcmp(src, dst, (size_t)h * w * 3) == 0);
  lcc_resize_bicubic_pil(src, h, w, dst, h, w);
  CHECK(memcmp(src, dst, (size_t)h * w * 3) == 0);
  memset(src, 77, (size_t)h * w * 3);   // the taps sum to 1: a flat picture stays flat, up or down
  int sizes[3][2] = {{90, 90}, {12, 20}, {37, 9}};
  for (int k = 0; k < 3; k++) {
    int oh = sizes[k][0], ow = sizes[k][1], flat = 1;
    lcc_resize_bicubic(src, h, w, dst, oh, ow);
    for (int i = 0; i < oh * ow * 3; i++) flat &= dst[i] == 77;
    lcc_resize_bicubic_pil(src, h, w, dst, oh, ow);
    for (int i = 0; i < oh * ow * 3; i++) flat &= dst[i] == 77;
    CHECK(flat);
  }
  free(src);
  free(dst);
}

int main(void) {
  test_smart_resize();
  test_clip_budget();
  test_resize_basics();
  return test_finish("test_media_size");
}
