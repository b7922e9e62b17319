// Still images through lcc_image_read: a JPEG file, a PNG with transparency (composited onto white as
// qwen_vl_utils' to_rgb does), a picture smart_resize enlarges, and clear errors naming the file.
#include <libavcodec/avcodec.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "util.h"

// An RGBA PNG made with FFmpeg's png encoder: left half opaque red, then alpha 128 red, then transparent.
static void write_rgba_png(const char *path, int h, int w) {
  const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  LCC_CHECK(codec, "no png encoder");
  AVCodecContext *c = avcodec_alloc_context3(codec);
  AVFrame *fr = av_frame_alloc();
  AVPacket *pkt = av_packet_alloc();
  LCC_CHECK(c && fr && pkt, "allocation failed");
  c->width = fr->width = w;
  c->height = fr->height = h;
  c->pix_fmt = fr->format = AV_PIX_FMT_RGBA;
  c->time_base = (AVRational){1, 1};
  int ret = avcodec_open2(c, codec, NULL);
  LCC_CHECK(ret >= 0, "avcodec_open2 png: %s", av_err2str(ret));
  ret = av_frame_get_buffer(fr, 0);
  LCC_CHECK(ret >= 0, "av_frame_get_buffer: %s", av_err2str(ret));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = fr->data[0] + y * fr->linesize[0] + x * 4;
      p[0] = 200, p[1] = 40, p[2] = 10;
      p[3] = x < w / 2 ? 255 : x < 3 * w / 4 ? 128 : 0;
    }
  ret = avcodec_send_frame(c, fr);
  LCC_CHECK(ret >= 0, "avcodec_send_frame: %s", av_err2str(ret));
  ret = avcodec_receive_packet(c, pkt);
  LCC_CHECK(ret >= 0, "avcodec_receive_packet: %s", av_err2str(ret));
  write_file(path, pkt->data, (size_t)pkt->size);
  av_packet_free(&pkt);
  av_frame_free(&fr);
  avcodec_free_context(&c);
}

static void test_alpha(void) {
  const char *path = tmp_path("alpha.png");
  write_rgba_png(path, 56, 112);   // already multiples of 28: no resize
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_image_read(path, &b, &f) == 0);
  CHECK(f.T == 1 && f.h == 56 && f.w == 112 && f.pts[0] == 0.0);
  const uint8_t *row = f.rgb + 20 * 112 * 3;
  const uint8_t *opaque = row + 10 * 3, *half = row + 70 * 3, *clear = row + 100 * 3;
  CHECK(opaque[0] == 200 && opaque[1] == 40 && opaque[2] == 10);
  // PIL's BLEND: DIV255(255 * (255 - 128) + c * 128) = 57985 / 255 -> 227, 147, 132.
  CHECK(half[0] == 227 && half[1] == 147 && half[2] == 132);
  CHECK(clear[0] == 255 && clear[1] == 255 && clear[2] == 255);
  lcc_frames_free(&f);
}

// A JPEG file written by lcc_jpeg_encode reads back as lcc_jpeg_decode's pixels, resized. 30 x 40 rounds to
// 28 x 28 = 784 < 3136 px, so the min branch scales by sqrt(3136 / 1200) = 1.617: ceil(1.73) = 2 and
// ceil(2.31) = 3 blocks of 28, 56 x 84.
static void test_jpeg_file(void) {
  int h = 30, w = 40;
  uint8_t pic[30 * 40 * 3], dec[30 * 40 * 3];
  natural_picture(pic, h, w, 5);
  lcc_bytes jpg = {0};
  CHECK(lcc_jpeg_encode(pic, h, w, 90, &jpg) == 0);
  CHECK(lcc_jpeg_decode(jpg.data, jpg.n, h, w, dec) == 0);
  write_file(tmp_path("small.jpg"), jpg.data, jpg.n);
  free(jpg.data);
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_image_read(tmp_path("small.jpg"), &b, &f) == 0);
  CHECK(f.T == 1 && f.h == 56 && f.w == 84);
  uint8_t *want = lcc_malloc(56 * 84 * 3);
  lcc_resize_bicubic_pil(dec, h, w, want, 56, 84);
  if (f.h == 56 && f.w == 84) CHECK(memcmp(want, f.rgb, 56 * 84 * 3) == 0);
  free(want);
  lcc_frames_free(&f);
}

static void expect_read_error(const char *path, const char *want) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_image_read(path, &b, &f) == -1);
  CHECK(error_has(path, want, NULL));
  CHECK(f.rgb == NULL);
}

static void test_errors(void) {
  expect_read_error(tmp_path("missing.png"), "No such file");
  write_file(tmp_path("empty.png"), NULL, 0);
  expect_read_error(tmp_path("empty.png"), "cannot open");
  uint8_t half[100];
  size_t n;
  char *png = lcc_read_file("tests/fixtures/image/exact.png", &n);
  LCC_CHECK(png && n > sizeof half, "%s", lcc_last_error());
  memcpy(half, png, sizeof half);   // the signature and header chunk, then nothing
  free(png);
  write_file(tmp_path("cut.png"), half, sizeof half);
  expect_read_error(tmp_path("cut.png"), "");
}

int main(void) {
  test_tmpdir_init();
  test_alpha();
  test_jpeg_file();
  test_errors();
  return test_finish("test_media_image");
}
