// Still images (png, jpeg, webp, anything FFmpeg decodes) as qwen_vl_utils' fetch_image prepares them:
// RGB (transparent pixels composited onto white, as its to_rgb does), smart_resize with the image pixel
// bounds, PIL bicubic resize.
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "av_rgb.h"
#include "media.h"
#include "util.h"

// The first picture of stream si of an opened file, decoded into *fr.
static int decode_stream(const char *path, AVFormatContext *fmt, int si, const AVCodec *codec, AVFrame *fr) {
  AVCodecContext *dec = avcodec_alloc_context3(codec);
  AVPacket *pkt = av_packet_alloc();
  LCC_CHECK(dec && pkt, "avcodec_alloc_context3/av_packet_alloc failed");
  int ret = avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar);
  LCC_CHECK(ret >= 0, "avcodec_parameters_to_context: %s", av_err2str(ret));
  dec->thread_count = 1;
  int rc = 0;
  if ((ret = avcodec_open2(dec, codec, NULL)) < 0) {
    rc = lcc_error("%s: cannot open the %s decoder (%s)", path, codec->name, av_err2str(ret));
  } else {
    ret = AVERROR(EAGAIN);
    while (ret == AVERROR(EAGAIN) && av_read_frame(fmt, pkt) >= 0) {
      if (pkt->stream_index == si && avcodec_send_packet(dec, pkt) >= 0) ret = avcodec_receive_frame(dec, fr);
      av_packet_unref(pkt);
    }
    if (ret == AVERROR(EAGAIN) && avcodec_send_packet(dec, NULL) >= 0) ret = avcodec_receive_frame(dec, fr);
    if (ret < 0) rc = lcc_error("%s: picture does not decode (%s)", path, av_err2str(ret));
  }
  av_packet_free(&pkt);
  avcodec_free_context(&dec);
  return rc;
}

// The first picture of the file, decoded into *fr.
static int decode_first(const char *path, AVFrame *fr) {
  AVFormatContext *fmt = NULL;
  int ret = avformat_open_input(&fmt, path, NULL, NULL);
  if (ret < 0) return lcc_error("%s: cannot open as an image (%s)", path, av_err2str(ret));
  const AVCodec *codec = NULL;
  int rc, si;
  if ((ret = avformat_find_stream_info(fmt, NULL)) < 0)
    rc = lcc_error("%s: cannot read stream info (%s)", path, av_err2str(ret));
  else if ((si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)) < 0)
    rc = lcc_error("%s: no picture in the file", path);
  else
    rc = decode_stream(path, fmt, si, codec, fr);
  avformat_close_input(&fmt);
  return rc;
}

// PIL's paste with an alpha mask onto white: DIV255(white * (255 - a) + c * a), DIV255(v) = ((v+128)>>8 + v+128)>>8.
static uint8_t over_white(int c, int a) {
  int v = 255 * (255 - a) + c * a + 128;
  return (uint8_t)(((v >> 8) + v) >> 8);
}

// The decoded picture as RGB24 [h, w, 3] at its own size.
static int picture_to_rgb(const AVFrame *fr, uint8_t *rgb) {
  const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fr->format);
  int alpha = desc && (desc->flags & AV_PIX_FMT_FLAG_ALPHA);
  size_t n = (size_t)fr->width * fr->height;
  uint8_t *tmp = alpha ? lcc_malloc(n * 4) : rgb;   // [h, w, 4] RGBA when there is alpha
  struct SwsContext *sws = NULL;
  int rc = lcc_av_frame_to_rgb(fr, alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24,
                               SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, tmp, &sws);
  sws_freeContext(sws);
  if (alpha) {
    for (size_t i = 0; i < n; i++)
      for (int c = 0; c < 3; c++) rgb[i * 3 + c] = over_white(tmp[i * 4 + c], tmp[i * 4 + 3]);
    free(tmp);
  }
  return rc;
}

// Put the file name in front of the message a size helper recorded (copied first: lcc_error writes there).
static int prefix_path(const char *path) {
  char why[256];
  snprintf(why, sizeof why, "%s", lcc_last_error());
  return lcc_error("%s: %s", path, why);
}

int lcc_image_read(const char *path, const lcc_video_budget *b, lcc_frames *out) {
  memset(out, 0, sizeof(*out));
  AVFrame *fr = av_frame_alloc();
  LCC_CHECK(fr, "av_frame_alloc failed");
  int rc = decode_first(path, fr);
  int oh = 0, ow = 0;
  if (rc == 0 && lcc_smart_resize(fr->height, fr->width, b->factor, b->image_min_pixels, b->image_max_pixels, &oh, &ow))
    rc = prefix_path(path);
  uint8_t *rgb = NULL;   // [h, w, 3] at the file's size
  if (rc == 0) {
    rgb = lcc_malloc((size_t)fr->width * fr->height * 3);
    if (picture_to_rgb(fr, rgb)) rc = prefix_path(path);
  }
  if (rc == 0) {
    *out = (lcc_frames){.T = 1, .h = oh, .w = ow, .rgb = lcc_malloc((size_t)oh * ow * 3),
                        .pts = lcc_calloc(1, sizeof(double))};
    lcc_resize_bicubic_pil(rgb, fr->height, fr->width, out->rgb, oh, ow);
  }
  free(rgb);
  av_frame_free(&fr);
  return rc;
}
