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

static void natural_picture_at(uint8_t *rgb, int h, int w, unsigned seed, int dx, int dy);

// The encoder behind write_test_video and write_test_video_with: frame i of `content` (0: painted index,
// 1: moving picture) through the named encoder (NULL: mpeg4 at qscale 2) with options "k=v;k=v", into the
// container the file name says. Returns -1 when this FFmpeg has no such encoder.
static int encode_video(const char *path, const char *encoder, const char *opts, int w, int h, int fps,
                        int nframes, int bframes, int content) {
  const AVCodec *codec = encoder ? avcodec_find_encoder_by_name(encoder) : avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  if (!codec) return -1;
  AVFormatContext *oc = NULL;
  int ret = avformat_alloc_output_context2(&oc, NULL, NULL, path);
  LCC_CHECK(ret >= 0, "avformat_alloc_output_context2 %s: %s", path, av_err2str(ret));
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
  c->thread_count = 1;
  if (!encoder) {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = 2 * FF_QP2LAMBDA;
  }
  if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary *dict = NULL;
  if (opts) LCC_CHECK(av_dict_parse_string(&dict, opts, "=", ";", 0) >= 0, "bad encoder options %s", opts);
  ret = avcodec_open2(c, codec, &dict);
  av_dict_free(&dict);
  LCC_CHECK(ret >= 0, "avcodec_open2 %s: %s", codec->name, av_err2str(ret));
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
    if (content == 0) paint_index(i, h, w, rgb);
    else natural_picture_at(rgb, h, w, 7, 3 * i, i);   // pans 3 px right and 1 px down a frame
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
  return 0;
}

void write_test_video(const char *path, int w, int h, int fps, int nframes, int bframes) {
  encode_video(path, NULL, NULL, w, h, fps, nframes, bframes, 0);
}

int write_test_video_with(const char *path, const char *encoder, const char *opts, int w, int h, int fps,
                          int nframes, int bframes) {
  return encode_video(path, encoder, opts, w, h, fps, nframes, bframes, 1);
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

void natural_picture(uint8_t *rgb, int h, int w, unsigned seed) { natural_picture_at(rgb, h, w, seed, 0, 0); }

// natural_picture seen through a window moved by (dx, dy): the rectangles and the sine move with it (the
// noise does not: it is drawn per output pixel, as encoders meet in real footage).
static void natural_picture_at(uint8_t *rgb, int h, int w, unsigned seed, int dx, int dy) {
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
      int X = (x + dx) % w, Y = (y + dy) % h;   // the picture wraps around
      double v[3] = {255.0 * x / w, 255.0 * y / h, 128 + 90 * sin(X * 0.21 + Y * 0.13)};
      for (int r = 0; r < 4; r++)
        if (Y >= y0[r] && Y < y1[r] && X >= x0[r] && X < x1[r])
          for (int c = 0; c < 3; c++) v[c] = col[r][c];
      int noise = (int)(lcg(&s) >> 28) % 9 - 4;   // -4..4
      for (int c = 0; c < 3; c++) {
        double q = v[c] + noise;
        rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
      }
    }
}
