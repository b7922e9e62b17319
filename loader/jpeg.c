// JPEG encode and decode of one RGB24 picture through FFmpeg's MJPEG codec (the shards' frame encoding).
//
// Quality: FFmpeg's MJPEG encoder quantizes with the MPEG-1 intra matrix times qscale/8 (DC fixed at 8), not
// with libjpeg's tables times a quality scale. We map a libjpeg-style quality q to qscale so that the mean
// quantizer step matches libjpeg's luminance table at that quality:
//   scale% = q < 50 ? 5000/q : 200 - 2q            (libjpeg's jpeg_quality_scaling)
//   qscale = round(scale% * 14 / 100), in 1..31   (14 = 8 * mean(libjpeg luma table 57.6) / mean(MPEG-1 33.0))
// so q 90 -> 3, 95 -> 1, 75 -> 7, 50 -> 14. Chroma is kept at full resolution (4:4:4): see jpeg_pix_fmt.
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <string.h>

#include "av_rgb.h"
#include "media.h"
#include "util.h"

// 4:4:4 keeps colour edges: at quality 90 the 320x240 test picture (tests/loader/test_media_jpeg.c) gets
// 39.0 dB at 1.62 bits/pixel, against 36.2 dB at 0.96 with 4:2:0 (34.6 dB on another picture, under 35).
// The encoder wants the full-range "J" format; swscale is given the same layout as plain YUV444P with the
// range set explicitly (it warns about the deprecated J formats otherwise).
static const enum AVPixelFormat jpeg_pix_fmt = AV_PIX_FMT_YUVJ444P;
static const enum AVPixelFormat sws_pix_fmt = AV_PIX_FMT_YUV444P;

static int quality_to_qscale(int quality) {
  if (quality < 1) quality = 1;
  if (quality > 100) quality = 100;
  int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  int q = (scale * 14 + 50) / 100;
  return q < 1 ? 1 : q > 31 ? 31 : q;
}

static void bytes_append(lcc_bytes *b, const uint8_t *data, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->data = lcc_realloc(b->data, b->cap);
  }
  memcpy(b->data + b->n, data, n);
  b->n += n;
}

// BT.601 full range both ways (what JFIF means by YCbCr).
static void set_full_range(struct SwsContext *sws) {
  const int *coefs = sws_getCoefficients(SWS_CS_ITU601);
  int ret = sws_setColorspaceDetails(sws, coefs, 1, coefs, 1, 0, 1 << 16, 1 << 16);
  LCC_CHECK(ret >= 0, "sws_setColorspaceDetails failed");
}

// The RGB picture as a full-range YUV 4:4:4 frame the encoder accepts.
static AVFrame *rgb_to_frame(const uint8_t *rgb, int h, int w) {
  AVFrame *fr = av_frame_alloc();
  LCC_CHECK(fr, "av_frame_alloc failed");
  fr->format = jpeg_pix_fmt;
  fr->width = w;
  fr->height = h;
  fr->color_range = AVCOL_RANGE_JPEG;
  int ret = av_frame_get_buffer(fr, 0);
  LCC_CHECK(ret >= 0, "av_frame_get_buffer: %s", av_err2str(ret));
  struct SwsContext *sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, sws_pix_fmt,
                                          SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
  LCC_CHECK(sws, "sws_getContext RGB24 -> YUV444P failed");
  set_full_range(sws);
  const uint8_t *src[1] = {rgb};
  int src_stride[1] = {w * 3};
  sws_scale(sws, src, src_stride, 0, h, fr->data, fr->linesize);
  sws_freeContext(sws);
  return fr;
}

int lcc_jpeg_encode(const uint8_t *rgb, int h, int w, int quality, lcc_bytes *out) {
  LCC_CHECK(h > 0 && w > 0, "lcc_jpeg_encode: bad size %dx%d", w, h);
  const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  LCC_CHECK(codec, "FFmpeg was built without the MJPEG encoder");
  AVCodecContext *cc = avcodec_alloc_context3(codec);
  LCC_CHECK(cc, "avcodec_alloc_context3 failed");
  cc->width = w;
  cc->height = h;
  cc->pix_fmt = jpeg_pix_fmt;
  cc->color_range = AVCOL_RANGE_JPEG;
  cc->time_base = (AVRational){1, 25};
  cc->thread_count = 1;
  cc->flags |= AV_CODEC_FLAG_QSCALE;   // a fixed quantizer: frame->quality below, no rate control
  cc->global_quality = quality_to_qscale(quality) * FF_QP2LAMBDA;
  int ret = avcodec_open2(cc, codec, NULL);
  LCC_CHECK(ret >= 0, "avcodec_open2 (mjpeg encoder): %s", av_err2str(ret));

  AVFrame *fr = rgb_to_frame(rgb, h, w);
  fr->quality = cc->global_quality;
  AVPacket *pkt = av_packet_alloc();
  LCC_CHECK(pkt, "av_packet_alloc failed");
  ret = avcodec_send_frame(cc, fr);
  LCC_CHECK(ret >= 0, "avcodec_send_frame (mjpeg): %s", av_err2str(ret));
  ret = avcodec_receive_packet(cc, pkt);
  LCC_CHECK(ret >= 0, "avcodec_receive_packet (mjpeg): %s", av_err2str(ret));
  bytes_append(out, pkt->data, (size_t)pkt->size);

  av_packet_free(&pkt);
  av_frame_free(&fr);
  avcodec_free_context(&cc);
  return 0;
}

int lcc_jpeg_decode(const uint8_t *jpeg, size_t n, int h, int w, uint8_t *rgb) {
  if (n == 0 || n > INT32_MAX) return lcc_error("JPEG decode: bad data size %zu bytes", n);
  const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
  LCC_CHECK(codec, "FFmpeg was built without the MJPEG decoder");
  AVCodecContext *cc = avcodec_alloc_context3(codec);
  LCC_CHECK(cc, "avcodec_alloc_context3 failed");
  cc->thread_count = 1;
  int ret = avcodec_open2(cc, codec, NULL);
  LCC_CHECK(ret >= 0, "avcodec_open2 (mjpeg decoder): %s", av_err2str(ret));
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  LCC_CHECK(pkt && fr, "av_packet_alloc/av_frame_alloc failed");
  ret = av_new_packet(pkt, (int)n);   // zeroed padding after the data, as the decoder requires
  LCC_CHECK(ret >= 0, "av_new_packet: %s", av_err2str(ret));
  memcpy(pkt->data, jpeg, n);

  int rc = 0;
  ret = avcodec_send_packet(cc, pkt);
  if (ret >= 0) ret = avcodec_send_packet(cc, NULL);   // end of stream: the frame comes out now
  if (ret >= 0) ret = avcodec_receive_frame(cc, fr);
  if (ret < 0)
    rc = lcc_error("JPEG decode: %zu bytes do not decode (%s)", n, av_err2str(ret));
  else if (fr->width != w || fr->height != h)
    rc = lcc_error("JPEG decode: picture is %dx%d, expected %dx%d", fr->width, fr->height, w, h);
  else {
    struct SwsContext *sws = NULL;
    rc = lcc_av_frame_to_rgb(fr, AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, rgb, &sws);
    sws_freeContext(sws);
  }

  av_frame_free(&fr);
  av_packet_free(&pkt);
  avcodec_free_context(&cc);
  return rc;
}
