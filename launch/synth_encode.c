// MP4 writing for livecc-synth through libavcodec and libavformat (FFmpeg 5.1 send/receive API).
// Determinism: one encoder thread, no B-frames, AV_CODEC_FLAG_BITEXACT and AVFMT_FLAG_BITEXACT (no
// library version strings), and our own integer RGB -> YUV conversion instead of swscale's CPU-specific
// paths. Timing: the encoder's time base is 1/fps and frame i has pts i and duration 1, so a reader sees
// frame i covering [i/fps, (i+1)/fps).
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"
#include "util.h"

struct lcc_synth_writer {
  char *path;
  AVFormatContext *fmt;
  AVCodecContext *enc;
  AVStream *st;
  AVFrame *frame;     // yuv420p [h, w], reused for every frame
  AVPacket *pkt;
  int64_t next_pts;   // frames sent so far, in the encoder's time base 1/fps
};

// Records "path: what: FFmpeg's reason" and jumps to the function's fail label.
#define AV_TRY(wr, call, what)                                                   \
  do {                                                                           \
    int rc_ = (call);                                                            \
    if (rc_ < 0) {                                                               \
      lcc_error("%s: %s: %s", (wr)->path, (what), av_err2str(rc_));             \
      goto fail;                                                                 \
    }                                                                            \
  } while (0)

const char *lcc_synth_codec(const char *codec) {
  if (!strcmp(codec, "auto")) return avcodec_find_encoder_by_name("libx264") ? "libx264" : "mpeg4";
  if (strcmp(codec, "libx264") && strcmp(codec, "mpeg4")) {
    lcc_error("codec '%s': expected auto, libx264 or mpeg4", codec);
    return NULL;
  }
  if (!avcodec_find_encoder_by_name(codec)) {
    lcc_error("codec '%s': this FFmpeg build has no such encoder", codec);
    return NULL;
  }
  return codec;
}

static void writer_free(lcc_synth_writer *wr) {
  if (wr->fmt) {
    if (wr->fmt->pb) avio_closep(&wr->fmt->pb);
    avformat_free_context(wr->fmt);
  }
  avcodec_free_context(&wr->enc);
  av_frame_free(&wr->frame);
  av_packet_free(&wr->pkt);
  free(wr->path);
  free(wr);
}

// BT.601 limited range, integer arithmetic: Y per pixel, U and V from the sum of each 2x2 block (h, w even).
// The chroma offset 128 is added before the shift (as 128 << 10), which keeps the shifted value non-negative.
static void rgb_to_yuv420(const uint8_t *rgb, int h, int w, AVFrame *f) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      f->data[0][y * f->linesize[0] + x] = (uint8_t)(((66 * p[0] + 129 * p[1] + 25 * p[2] + 128) >> 8) + 16);
    }
  for (int y = 0; y < h / 2; y++)
    for (int x = 0; x < w / 2; x++) {
      int r = 0, g = 0, b = 0;   // sums over the 2x2 block
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
          const uint8_t *p = rgb + ((size_t)(2 * y + dy) * w + 2 * x + dx) * 3;
          r += p[0], g += p[1], b += p[2];
        }
      f->data[1][y * f->linesize[1] + x] = (uint8_t)((-38 * r - 74 * g + 112 * b + 512 + (128 << 10)) >> 10);
      f->data[2][y * f->linesize[2] + x] = (uint8_t)((112 * r - 94 * g - 18 * b + 512 + (128 << 10)) >> 10);
    }
}

// Sends one frame (NULL: flush) and writes every packet the encoder has ready.
static int encode(lcc_synth_writer *wr, const AVFrame *frame) {
  AV_TRY(wr, avcodec_send_frame(wr->enc, frame), "send frame to encoder");
  for (;;) {
    int rc = avcodec_receive_packet(wr->enc, wr->pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
    AV_TRY(wr, rc, "encode");
    if (!wr->pkt->duration) wr->pkt->duration = 1;   // one frame: gives the last frame its length in the file
    av_packet_rescale_ts(wr->pkt, wr->enc->time_base, wr->st->time_base);
    wr->pkt->stream_index = wr->st->index;
    AV_TRY(wr, av_interleaved_write_frame(wr->fmt, wr->pkt), "write packet");
  }
fail:
  return -1;
}

lcc_synth_writer *lcc_synth_writer_open(const char *path, int w, int h, int fps, const char *codec) {
  const char *name = lcc_synth_codec(codec);
  if (!name) return NULL;
  lcc_synth_writer *wr = lcc_calloc(1, sizeof *wr);
  wr->path = lcc_strdup(path);
  const AVCodec *enc = avcodec_find_encoder_by_name(name);
  AV_TRY(wr, avformat_alloc_output_context2(&wr->fmt, NULL, "mp4", path), "mp4 muxer");
  wr->fmt->flags |= AVFMT_FLAG_BITEXACT;
  wr->st = avformat_new_stream(wr->fmt, NULL);
  wr->enc = avcodec_alloc_context3(enc);
  wr->frame = av_frame_alloc();
  wr->pkt = av_packet_alloc();
  LCC_CHECK(wr->st && wr->enc && wr->frame && wr->pkt, "%s: out of memory for the FFmpeg contexts", path);

  AVCodecContext *c = wr->enc;
  c->width = w;
  c->height = h;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = (AVRational){1, fps};
  c->framerate = (AVRational){fps, 1};
  c->gop_size = fps;        // a key frame every second: cheap seeks to any clip start
  c->max_b_frames = 0;      // decode order = display order
  c->thread_count = 1;
  c->flags |= AV_CODEC_FLAG_BITEXACT;
  c->color_range = AVCOL_RANGE_MPEG;
  c->colorspace = AVCOL_SPC_SMPTE170M;
  c->color_primaries = AVCOL_PRI_SMPTE170M;
  c->color_trc = AVCOL_TRC_SMPTE170M;
  if (wr->fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary *opts = NULL;
  if (!strcmp(name, "libx264")) {
    av_dict_set(&opts, "preset", "veryfast", 0);
    av_dict_set(&opts, "crf", "18", 0);   // sharp colours and edges at 112x112
  } else {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 3;
  }
  int rc = avcodec_open2(c, enc, &opts);
  LCC_CHECK(rc < 0 || av_dict_count(opts) == 0, "%s: encoder %s ignored an option", path, name);
  av_dict_free(&opts);
  AV_TRY(wr, rc, "open the encoder");
  AV_TRY(wr, avcodec_parameters_from_context(wr->st->codecpar, c), "stream parameters");
  wr->st->time_base = c->time_base;
  wr->st->avg_frame_rate = c->framerate;
  AV_TRY(wr, avio_open(&wr->fmt->pb, path, AVIO_FLAG_WRITE), "create the file");
  AV_TRY(wr, avformat_write_header(wr->fmt, NULL), "write the MP4 header");

  wr->frame->format = AV_PIX_FMT_YUV420P;
  wr->frame->width = w;
  wr->frame->height = h;
  AV_TRY(wr, av_frame_get_buffer(wr->frame, 0), "frame buffer");
  return wr;
fail:
  writer_free(wr);
  return NULL;
}

int lcc_synth_writer_add(lcc_synth_writer *wr, const uint8_t *rgb) {
  AV_TRY(wr, av_frame_make_writable(wr->frame), "frame buffer");
  rgb_to_yuv420(rgb, wr->enc->height, wr->enc->width, wr->frame);
  wr->frame->pts = wr->next_pts++;
  return encode(wr, wr->frame);
fail:
  return -1;
}

int lcc_synth_writer_close(lcc_synth_writer *wr) {
  int rc = encode(wr, NULL);
  if (!rc) {
    AV_TRY(wr, av_write_trailer(wr->fmt), "finish the MP4 file");
    AV_TRY(wr, avio_closep(&wr->fmt->pb), "close the file");
  }
  writer_free(wr);
  return rc;
fail:
  writer_free(wr);
  return -1;
}
