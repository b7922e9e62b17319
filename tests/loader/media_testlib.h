// Helpers for the media tests: test videos encoded with libavcodec (frame index painted into the picture,
// so a decoded frame says which one it is), and test pictures. testlib.h has the checks and scratch files.
#ifndef LCC_MEDIA_TESTLIB_H
#define LCC_MEDIA_TESTLIB_H

#include <stdint.h>

#include "testlib.h"

// Frame i of a test video: three vertical bands of flat gray, the base-16 digits of i (low, middle, high)
// at levels 16*digit + 8, so a decode can be identified at any size and survives lossy coding (+-7).
void paint_index(int i, int h, int w, uint8_t *rgb);
// The index read back from a frame [h, w, 3] by sampling the centre of each band; -1 if a band is not flat.
int read_index(const uint8_t *rgb, int h, int w);

// Encodes nframes painted frames (w x h, even) at `fps` frames per second into an MP4 with FFmpeg's mpeg4
// encoder (high quality, B-frames when bframes > 0 so decode order differs from presentation order).
void write_test_video(const char *path, int w, int h, int fps, int nframes, int bframes);
// A moving picture (natural_picture panning 3 px right and 1 px down a frame, wrapping) through the
// encoder named (FFmpeg's name: "libx264", "mpeg2video", ...) with options "key=value;key=value" (may be
// NULL), gop 12, into the container the file name says (.mp4, .mkv, .ts, .avi). Returns 0, or -1 when this
// FFmpeg build has no such encoder.
int write_test_video_with(const char *path, const char *encoder, const char *opts, int w, int h, int fps,
                          int nframes, int bframes);

// A natural-looking picture: gradients, a sine, hard-edged rectangles, mild noise (deterministic per seed).
void natural_picture(uint8_t *rgb, int h, int w, unsigned seed);

#endif
