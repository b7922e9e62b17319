#include "media_testlib.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void paint_index(int i, int h, int w, uint8_t *rgb) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int band = x * 3 / w, digit = (i >> (4 * band)) & 15;
      memset(rgb + ((size_t)y * w + x) * 3, 16 * digit + 8, 3);
    }
}

int read_index(const uint8_t *rgb, int h, int w) {
  int index = 0;
  for (int band = 0; band < 3; band++) {
    int x = (2 * band + 1) * w / 6;
    const uint8_t *p = rgb + ((size_t)(h / 2) * w + x) * 3;
    int v = (p[0] + p[1] + p[2]) / 3, digit = v / 16;
    if (abs(v - (16 * digit + 8)) > 6) return -1;
    index |= digit << (4 * band);
  }
  return index;
}

static void write_packets(AVFormatContext *oc, AVCodecContext *c, AVStream *st, AVPacket *pkt) {
  int ret;
  while ((ret = avcodec_receive_packet(c, pkt)) >= 0) {
    pkt->duration = 1;   // one frame; without it the MP4 muxer ends the edit list before the last frame
    av_packet_rescale_ts(pkt, c->time_base, st->time_base);
    pkt->stream_index = st->index;
    ret = av_interleaved_write_frame(oc, pkt);
    LCC_CHECK(ret >= 0, "av_interleaved_write_frame: %s", av_err2str(ret));
  }
  LCC_CHECK(ret == AVERROR(EAGAIN) || ret == AVERROR_EOF, "avcodec_receive_packet: %s", av_err2str(ret));
}

void write_test_video(const char *path, int w, int h, int fps, int nframes, int bframes) {
  AVFormatContext *oc = NULL;
  int ret = avformat_alloc_output_context2(&oc, NULL, "mp4", path);
  LCC_CHECK(ret >= 0, "avformat_alloc_output_context2: %s", av_err2str(ret));
  const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  LCC_CHECK(codec, "no mpeg4 encoder");
  AVStream *st = avformat_new_stream(oc, NULL);
  AVCodecContext *c = avcodec_alloc_context3(codec);
  LCC_CHECK(st && c, "avformat_new_stream/avcodec_alloc_context3 failed");
  c->width = w;
  c->height = h;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = (AVRational){1, fps};
  c->framerate = (AVRational){fps, 1};
  c->gop_size = 12;
  c->max_b_frames = bframes;
  c->flags |= AV_CODEC_FLAG_QSCALE;
  c->global_quality = 2 * FF_QP2LAMBDA;
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  ret = avcodec_open2(c, codec, NULL);
  LCC_CHECK(ret >= 0, "avcodec_open2 mpeg4: %s", av_err2str(ret));
  ret = avcodec_parameters_from_context(st->codecpar, c);
  LCC_CHECK(ret >= 0, "avcodec_parameters_from_context: %s", av_err2str(ret));
  st->time_base = c->time_base;
  ret = avio_open(&oc->pb, path, AVIO_FLAG_WRITE);
  LCC_CHECK(ret >= 0, "avio_open %s: %s", path, av_err2str(ret));
  ret = avformat_write_header(oc, NULL);
  LCC_CHECK(ret >= 0, "avformat_write_header: %s", av_err2str(ret));

  AVFrame *fr = av_frame_alloc();
  AVPacket *pkt = av_packet_alloc();
  LCC_CHECK(fr && pkt, "av_frame_alloc/av_packet_alloc failed");
  fr->format = c->pix_fmt;
  fr->width = w;
  fr->height = h;
  ret = av_frame_get_buffer(fr, 0);
  LCC_CHECK(ret >= 0, "av_frame_get_buffer: %s", av_err2str(ret));
  struct SwsContext *sws =
      sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL);
  LCC_CHECK(sws, "sws_getContext failed");
  uint8_t *rgb = lcc_malloc((size_t)w * h * 3);
  for (int i = 0; i < nframes; i++) {
    paint_index(i, h, w, rgb);
    ret = av_frame_make_writable(fr);
    LCC_CHECK(ret >= 0, "av_frame_make_writable: %s", av_err2str(ret));
    const uint8_t *src[1] = {rgb};
    int stride[1] = {w * 3};
    sws_scale(sws, src, stride, 0, h, fr->data, fr->linesize);
    fr->pts = i;
    ret = avcodec_send_frame(c, fr);
    LCC_CHECK(ret >= 0, "avcodec_send_frame: %s", av_err2str(ret));
    write_packets(oc, c, st, pkt);
  }
  ret = avcodec_send_frame(c, NULL);
  LCC_CHECK(ret >= 0, "avcodec_send_frame(flush): %s", av_err2str(ret));
  write_packets(oc, c, st, pkt);
  ret = av_write_trailer(oc);
  LCC_CHECK(ret >= 0, "av_write_trailer: %s", av_err2str(ret));
  free(rgb);
  sws_freeContext(sws);
  av_packet_free(&pkt);
  av_frame_free(&fr);
  avcodec_free_context(&c);
  avio_closep(&oc->pb);
  avformat_free_context(oc);
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

void natural_picture(uint8_t *rgb, int h, int w, unsigned seed) {
  uint32_t s = seed * 2654435761u + 1;
  int y0[4], x0[4], y1[4], x1[4];   // four rectangles of flat colour
  uint8_t col[4][3];
  for (int r = 0; r < 4; r++) {
    y0[r] = (int)(lcg(&s) >> 8) % h;
    x0[r] = (int)(lcg(&s) >> 8) % w;
    y1[r] = y0[r] + 3 + (int)(lcg(&s) >> 8) % (h / 2);
    x1[r] = x0[r] + 3 + (int)(lcg(&s) >> 8) % (w / 2);
    for (int c = 0; c < 3; c++) col[r][c] = (uint8_t)(lcg(&s) >> 24);
  }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double v[3] = {255.0 * x / w, 255.0 * y / h, 128 + 90 * sin(x * 0.21 + y * 0.13)};
      for (int r = 0; r < 4; r++)
        if (y >= y0[r] && y < y1[r] && x >= x0[r] && x < x1[r])
          for (int c = 0; c < 3; c++) v[c] = col[r][c];
      int noise = (int)(lcg(&s) >> 28) % 9 - 4;   // -4..4
      for (int c = 0; c < 3; c++) {
        double q = v[c] + noise;
        rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
      }
    }
}
