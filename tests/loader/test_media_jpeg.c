// JPEG through FFmpeg's MJPEG codec: round-trip PSNR on a natural-looking picture at the default quality
// (90) and others, size growing with quality, and clear errors for a wrong expected size or corrupt data.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "util.h"

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
  double se = 0;
  for (size_t i = 0; i < n; i++) se += (double)(a[i] - b[i]) * (a[i] - b[i]);
  return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / (se / n));
}

static void test_round_trip(void) {
  int h = 240, w = 320;
  size_t n = (size_t)h * w * 3;
  uint8_t *pic = lcc_malloc(n), *back = lcc_malloc(n);
  natural_picture(pic, h, w, 3);
  int qualities[] = {50, 75, 90, 95};
  size_t prev = 0;
  for (int k = 0; k < 4; k++) {
    lcc_bytes jpg = {0};
    CHECK(lcc_jpeg_encode(pic, h, w, qualities[k], &jpg) == 0);
    CHECK(jpg.n > 2 && jpg.data[0] == 0xFF && jpg.data[1] == 0xD8);   // SOI marker
    CHECK(jpg.n > prev);
    prev = jpg.n;
    CHECK(lcc_jpeg_decode(jpg.data, jpg.n, h, w, back) == 0);
    double db = psnr(pic, back, n);
    printf("quality %d: %zu bytes (%.2f bits/pixel), PSNR %.2f dB\n", qualities[k], jpg.n, 8.0 * jpg.n / (h * w), db);
    if (qualities[k] == 90) CHECK(db >= 35.0);
    CHECK(db >= 30.0);
    free(jpg.data);
  }
  // Encode appends: two pictures in one buffer decode separately.
  lcc_bytes two = {0};
  CHECK(lcc_jpeg_encode(pic, h, w, 90, &two) == 0);
  size_t first = two.n;
  CHECK(lcc_jpeg_encode(pic, h, w, 90, &two) == 0);
  CHECK(two.n == 2 * first && memcmp(two.data, two.data + first, first) == 0);   // deterministic
  CHECK(lcc_jpeg_decode(two.data + first, first, h, w, back) == 0);
  free(two.data);
  free(pic);
  free(back);
}

static void test_errors(void) {
  int h = 28, w = 56;
  uint8_t pic[28 * 56 * 3], back[28 * 56 * 3];
  natural_picture(pic, h, w, 4);
  lcc_bytes jpg = {0};
  CHECK(lcc_jpeg_encode(pic, h, w, 90, &jpg) == 0);
  CHECK(lcc_jpeg_decode(jpg.data, jpg.n, w, h, back) == -1);   // transposed size
  CHECK(strstr(lcc_last_error(), "picture is 56x28, expected 28x56") != NULL);
  uint8_t junk[200];
  for (int i = 0; i < 200; i++) junk[i] = (uint8_t)(i * 37 + 11);
  CHECK(lcc_jpeg_decode(junk, sizeof junk, h, w, back) == -1);
  CHECK(strstr(lcc_last_error(), "JPEG decode") != NULL);
  CHECK(lcc_jpeg_decode(jpg.data, 0, h, w, back) == -1);
  free(jpg.data);
}

int main(void) {
  test_round_trip();
  test_errors();
  return test_finish("test_media_jpeg");
}
