// Pixels against the Python references in tests/fixtures/image (tests/reference/make_image_fixtures.py):
// patch rows vs HF Qwen2VLImageProcessor (images and videos), the image path's resize vs what HF's
// processor feeds to its normalization (PIL), and our torchvision-style resize vs torchvision.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "safetensors.h"
#include "util.h"

static lcc_st_file *fx;

static const void *tensor(const char *name, lcc_dtype dtype, size_t numel) {
  const lcc_st_tensor *t = lcc_st_find(fx, name);
  LCC_CHECK(t && t->dtype == dtype && t->numel == numel, "fixture tensor %s missing or of the wrong shape", name);
  return lcc_st_data(fx, t);
}

static int max_diff_u8(const uint8_t *a, const uint8_t *b, size_t n) {
  int m = 0;
  for (size_t i = 0; i < n; i++) m = abs(a[i] - b[i]) > m ? abs(a[i] - b[i]) : m;
  return m;
}

// Our rows for frames [T, h, w, 3] equal HF's pixel_values (computed the same way in float32: exact).
static void expect_rows(const uint8_t *rgb, int T, int h, int w, const char *name) {
  int rows = (T + 1) / 2 * (h / 14) * (w / 14);
  const float *want = tensor(name, LCC_F32, (size_t)rows * 1176);
  float *got = lcc_malloc(sizeof(float) * rows * 1176);
  lcc_patchify(rgb, T, h, w, 14, 2, 2, lcc_clip_mean, lcc_clip_std, got);
  double worst = 0;
  for (size_t i = 0; i < (size_t)rows * 1176; i++) worst = fmax(worst, fabs(got[i] - want[i]));
  printf("%s: %d rows, max |ours - HF| = %g\n", name, rows, worst);
  CHECK(worst <= 1e-5);
  free(got);
}

static void test_image_exact(void) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_image_read("tests/fixtures/image/exact.png", &b, &f) == 0);
  CHECK(f.T == 1 && f.h == 56 && f.w == 84);
  const int64_t *grid = tensor("exact_grid", LCC_I64, 3);
  CHECK(grid[0] == 1 && grid[1] == f.h / 14 && grid[2] == f.w / 14);
  if (f.T == 1 && f.h == 56 && f.w == 84) expect_rows(f.rgb, 1, 56, 84, "exact_rows");
  lcc_frames_free(&f);
}

// HF resizes 61 x 101 to 56 x 112 with PIL bicubic; our image path resizes the same way.
static void test_image_resize(void) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_image_read("tests/fixtures/image/resize.png", &b, &f) == 0);
  const int64_t *grid = tensor("resize_grid", LCC_I64, 3);
  CHECK(f.T == 1 && grid[1] * 14 == f.h && grid[2] * 14 == f.w);
  if (f.h == 56 && f.w == 112) {
    int d = max_diff_u8(f.rgb, tensor("resize_u8", LCC_U8, 56 * 112 * 3), 56 * 112 * 3);
    printf("resize.png: max |ours - HF resized| = %d/255\n", d);
    CHECK(d == 0);   // within 2/255 would do; we are bit-exact with Pillow 11's fixed-point passes
  }
  lcc_frames_free(&f);
}

static void test_videos(void) {
  expect_rows(tensor("video2_u8", LCC_U8, 2 * 56 * 84 * 3), 2, 56, 84, "video2_rows");
  expect_rows(tensor("video4_u8", LCC_U8, 4 * 56 * 56 * 3), 4, 56, 56, "video4_rows");
}

static void test_resizers(void) {
  uint8_t out[56 * 84 * 3];
  const uint8_t *in = tensor("tv_in", LCC_U8, 120 * 200 * 3);
  lcc_resize_bicubic(in, 120, 200, out, 56, 84);
  int d_down = max_diff_u8(out, tensor("tv_down", LCC_U8, sizeof out), sizeof out);
  lcc_resize_bicubic(tensor("tv_up_in", LCC_U8, 40 * 50 * 3), 40, 50, out, 56, 84);
  int d_up = max_diff_u8(out, tensor("tv_up", LCC_U8, sizeof out), sizeof out);
  lcc_resize_bicubic_pil(in, 120, 200, out, 56, 84);
  int d_pil = max_diff_u8(out, tensor("pil_down", LCC_U8, sizeof out), sizeof out);
  printf("resize: max diff vs torchvision down %d, up %d; vs PIL down %d\n", d_down, d_up, d_pil);
  CHECK(d_down == 0 && d_up == 0 && d_pil == 0);   // fixture from x86-64 torch 2.6 / Pillow 11; see resize.c
}

int main(void) {
  fx = lcc_st_open("tests/fixtures/image/pixels.safetensors");
  LCC_CHECK(fx, "%s", lcc_last_error());
  test_image_exact();
  test_image_resize();
  test_videos();
  test_resizers();
  lcc_st_close(fx);
  return test_finish("test_media_hf");
}
