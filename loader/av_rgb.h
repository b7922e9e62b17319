// Decoded FFmpeg pictures to packed RGB, shared by the video, image and JPEG readers of lcc_media.
#ifndef LCC_AV_RGB_H
#define LCC_AV_RGB_H

#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#include <stddef.h>
#include <stdint.h>

// Converts fr to dst_fmt (AV_PIX_FMT_RGB24 or RGBA) at its own size into dst [h, w, 3 or 4], using the colour
// matrix and range the frame declares (unknown matrices: BT.601; the deprecated full-range "J" formats are
// handed to swscale as their plain twins with the range set, which is what they mean). *sws is a context
// cached across calls (NULL at first); the caller frees it with sws_freeContext. Returns 0, or -1 with
// lcc_error() when swscale cannot convert the frame's pixel format.
int lcc_av_frame_to_rgb(const AVFrame *fr, enum AVPixelFormat dst_fmt, int sws_flags, uint8_t *dst,
                        struct SwsContext **sws);

// The same into rows `stride` bytes apart of a buffer from av_malloc (aligned), without the copy: stride at
// least lcc_av_rgb_stride(width), the padded row swscale's SIMD converters need (the padding gets scratch).
size_t lcc_av_rgb_stride(int width, enum AVPixelFormat dst_fmt);
int lcc_av_frame_to_rgb_rows(const AVFrame *fr, enum AVPixelFormat dst_fmt, int sws_flags, uint8_t *dst,
                             size_t stride, struct SwsContext **sws);

#endif
