// Decoded FFmpeg pictures to packed RGB (see av_rgb.h).
#include "av_rgb.h"

#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <string.h>

#include "util.h"

static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ440P: *full = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ444P: *full = 1; return AV_PIX_FMT_YUV444P;
    default: return f;
  }
}

size_t lcc_av_rgb_stride(int width, enum AVPixelFormat dst_fmt) {
  size_t row = (size_t)width * (dst_fmt == AV_PIX_FMT_RGB24 ? 3 : 4);
  return (row + 63) / 64 * 64 + 64;
}

int lcc_av_frame_to_rgb_rows(const AVFrame *fr, enum AVPixelFormat dst_fmt, int sws_flags, uint8_t *dst,
                             size_t stride, struct SwsContext **sws) {
  int full = fr->color_range == AVCOL_RANGE_JPEG;
  enum AVPixelFormat fmt = plain_format(fr->format, &full);
  *sws = sws_getCachedContext(*sws, fr->width, fr->height, fmt, fr->width, fr->height, dst_fmt, sws_flags, NULL,
                              NULL, NULL);
  if (!*sws) return lcc_error("cannot convert pixel format %s to RGB", av_get_pix_fmt_name(fmt));
  const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);
  if (desc && !(desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) && desc->nb_components >= 3) {
    const int *coefs = sws_getCoefficients(fr->colorspace);   // unknown spaces give BT.601
    int ret = sws_setColorspaceDetails(*sws, coefs, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    LCC_CHECK(ret >= 0, "sws_setColorspaceDetails failed");
  }
  uint8_t *planes[1] = {dst};
  int st = (int)stride;
  sws_scale(*sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, planes, &st);
  return 0;
}

int lcc_av_frame_to_rgb(const AVFrame *fr, enum AVPixelFormat dst_fmt, int sws_flags, uint8_t *dst,
                        struct SwsContext **sws) {
  // swscale's SIMD converters write whole blocks of pixels and get the last few of a row wrong unless each
  // destination row is padded and aligned (seen at 854 wide: 6 garbage pixels). Convert into padded rows.
  size_t row = (size_t)fr->width * (dst_fmt == AV_PIX_FMT_RGB24 ? 3 : 4);
  size_t stride = lcc_av_rgb_stride(fr->width, dst_fmt);
  uint8_t *buf = av_malloc(stride * fr->height);
  LCC_CHECK(buf, "out of memory converting a %dx%d picture", fr->width, fr->height);
  int rc = lcc_av_frame_to_rgb_rows(fr, dst_fmt, sws_flags, buf, stride, sws);
  if (rc == 0)
    for (int y = 0; y < fr->height; y++) memcpy(dst + y * row, buf + (size_t)y * stride, row);
  av_free(buf);
  return rc;
}
