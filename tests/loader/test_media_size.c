// smart_resize and the per-clip pixel budget against hand-computed sizes (QWEN2VL.md 1.2, LIVECC.md 3.3),
// basic resize properties (same size copies, flat pictures stay flat), and the resize plan against a plain
// scalar transcription of the torchvision resize.
#include <math.h>
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

// A plain transcription of the torchvision resize (resize.c's taps, then a scalar width pass and height pass
// in tap order with fused multiply-adds, one rounding at the end): what the vectorized, row-at-a-time plan
// must reproduce byte for byte.
static float ref_cubic(float x) {
  const float a = -0.5f;
  x = fabsf(x);
  if (x < 1.0f) return fmaf(fmaf(a + 2, x, -(a + 3)) * x, x, 1.0f);
  if (x < 2.0f) return fmaf(fmaf(fmaf(a, x, -5 * a), x, 8 * a), x, -4 * a);
  return 0.0f;
}

static int ref_taps(int in, int out, int **lo, int **n, float **wt) {
  float scale = (float)in / (float)out;
  float support = scale >= 1.0f ? (float)(2.0 * scale) : 2.0f;
  float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
  int k = (int)ceil(support) * 2 + 1;
  *lo = lcc_malloc(sizeof(int) * out), *n = lcc_malloc(sizeof(int) * out);
  float *w = *wt = lcc_calloc((size_t)out * k, sizeof(float));
  for (int i = 0; i < out; i++) {
    float center = (float)(scale * (i + 0.5)), total = 0.0f;
    long l = (long)(center - support + 0.5), h = (long)(center + support + 0.5);
    if (l < 0) l = 0;
    if (h > in) h = in;
    if (h - l > k) h = l + k;
    for (long j = 0; j < h - l; j++) total += w[i * k + j] = ref_cubic((float)(((double)((float)(j + l) - center) + 0.5) * invscale));
    if (total != 0.0f)
      for (long j = 0; j < h - l; j++) w[i * k + j] /= total;
    (*lo)[i] = (int)l, (*n)[i] = (int)(h - l);
  }
  return k;
}

static void ref_resize(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow) {
  float *a = lcc_malloc(sizeof(float) * (size_t)h * ow * 3), *b = lcc_malloc(sizeof(float) * (size_t)oh * ow * 3);
  int *lx, *nx, *ly, *ny;
  float *wx, *wy;
  int kx = ref_taps(w, ow, &lx, &nx, &wx), ky = ref_taps(h, oh, &ly, &ny, &wy);
  for (int y = 0; y < h; y++)   // width pass (skipped when the width stays)
    for (int x = 0; x < ow; x++)
      for (int c = 0; c < 3; c++) {
        const uint8_t *s = src + ((size_t)y * w) * 3 + c;
        float v;
        if (w == ow) v = s[x * 3];
        else {
          v = s[lx[x] * 3] * wx[x * kx];
          for (int j = 1; j < nx[x]; j++) v = fmaf(s[(lx[x] + j) * 3], wx[x * kx + j], v);
        }
        a[((size_t)y * ow + x) * 3 + c] = v;
      }
  for (int y = 0; y < oh; y++)   // height pass (skipped when the height stays)
    for (int i = 0; i < ow * 3; i++) {
      float v;
      if (h == oh) v = a[(size_t)y * ow * 3 + i];
      else {
        v = a[(size_t)ly[y] * ow * 3 + i] * wy[y * ky];
        for (int j = 1; j < ny[y]; j++) v = fmaf(a[(size_t)(ly[y] + j) * ow * 3 + i], wy[y * ky + j], v);
      }
      b[(size_t)y * ow * 3 + i] = v;
    }
  for (size_t i = 0; i < (size_t)oh * ow * 3; i++) {
    float v = b[i] < 0 ? 0 : b[i] > 255 ? 255 : b[i];
    dst[i] = (uint8_t)nearbyintf(v);
  }
  free(a), free(b), free(lx), free(nx), free(ly), free(ny), free(wx), free(wy);
}

// The plan (lcc_resizer: source rows at a padded stride, one plan for several pictures) and
// lcc_resize_bicubic give the reference's bytes: up, down, far down, one axis only, odd sizes.
static void test_resize_plan(void) {
  int shapes[][4] = {{37, 53, 90, 90}, {37, 53, 12, 20}, {37, 53, 37, 9}, {37, 53, 60, 53}, {96, 160, 252, 364},
                     {360, 640, 364, 644}, {121, 333, 56, 85}, {200, 301, 7, 11}, {64, 96, 64, 97}, {5, 7, 29, 31}};
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    int h = shapes[k][0], w = shapes[k][1], oh = shapes[k][2], ow = shapes[k][3];
    size_t stride = (size_t)w * 3 + 29, out = (size_t)oh * ow * 3;
    uint8_t *src = lcc_malloc((size_t)h * w * 3), *padded = lcc_malloc(stride * h);
    uint8_t *want = lcc_malloc(out), *got = lcc_malloc(out), *plain = lcc_malloc(out);
    lcc_resizer *r = lcc_resizer_new(h, w, oh, ow);
    for (unsigned seed = 1; seed <= 2; seed++) {   // the second picture through the same plan
      natural_picture(src, h, w, seed * 11 + (unsigned)k);
      if (seed == 2)
        for (size_t i = 0; i < (size_t)h * w * 3; i += 7) src[i] = (uint8_t)(i % 5 ? 255 : 0);   // overshoot
      memset(padded, 0xAB, stride * h);
      for (int y = 0; y < h; y++) memcpy(padded + y * stride, src + (size_t)y * w * 3, (size_t)w * 3);
      ref_resize(src, h, w, want, oh, ow);
      lcc_resizer_run(r, padded, stride, got);
      lcc_resize_bicubic(src, h, w, plain, oh, ow);
      CHECKF(!memcmp(got, want, out), "plan %dx%d -> %dx%d picture %u differs from the reference", w, h, ow, oh, seed);
      CHECKF(!memcmp(plain, want, out), "lcc_resize_bicubic %dx%d -> %dx%d differs from the reference", w, h, ow, oh);
    }
    lcc_resizer_free(r);
    free(src), free(padded), free(want), free(got), free(plain);
  }
}

int main(void) {
  test_smart_resize();
  test_clip_budget();
  test_resize_basics();
  test_resize_plan();
  return test_finish("test_media_size");
}
