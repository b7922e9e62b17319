// Pictures in and out, through FFmpeg's libraries: video frames sampled as LiveCC samples them (LIVECC.md
// 3.2, 3.9), still images, one bicubic resize per clip under the visual-token budget (3.3), JPEG encode and
// decode (FFmpeg's MJPEG codec) for the shards, and the Qwen2-VL patch rows (QWEN2VL.md 1.2).
// Every function is thread-safe (no shared state); errors name the file and the reason via lcc_error().
#ifndef LCC_MEDIA_H
#define LCC_MEDIA_H

#include <stddef.h>
#include <stdint.h>

// T frames of h x w RGB24 pixels, one contiguous buffer [T, h, w, 3], with each frame's end timestamp.
// A video read also says how complete its file is: a file cut short (a download or copy that stopped) still
// reads, with fewer frames in the file than its container lists.
typedef struct {
  int T, h, w;
  uint8_t *rgb;
  double *pts;        // [T] end timestamp of each frame in seconds (decord's _frame_pts[:, 1])
  int listed_frames;  // video frames the container's index lists (MP4, MOV, AVI); 0: not listed (Matroska, WebM)
  int file_frames;    // video frames the file holds
  double file_end;    // end of the last of them, seconds
} lcc_frames;

void lcc_frames_free(lcc_frames *f);

// Pixel budget of a clip (LiveCC's numbers are the defaults; every one is configurable).
typedef struct {
  double fps;                 // 2.0
  int max_frames;             // 480 (FPS_MAX_FRAMES)
  int min_frames;             // 4 (non-strict sampling only)
  long min_pixels;            // 78,400 = 100*28*28 per frame
  long max_pixels;            // 602,112 = 768*28*28 per frame
  long total_pixels;          // 19,267,584 = 24,576*28*28 per clip (VIDEO_MAX_PIXELS)
  long image_min_pixels;      // 3,136
  long image_max_pixels;      // 12,845,056
  int factor;                 // 28 = patch 14 * merge 2
} lcc_video_budget;

void lcc_video_budget_default(lcc_video_budget *b);

// Qwen's smart_resize (QWEN2VL.md 1.2, round half to even): returns 0 with (*oh, *ow), or -1 with
// lcc_error() when the aspect ratio exceeds 200 or a side is 0.
int lcc_smart_resize(int h, int w, int factor, long min_pixels, long max_pixels, int *oh, int *ow);
// The per-frame pixel cap of a clip of nframes frames (LIVECC.md 3.3 step 1), rounded down to a whole pixel.
long lcc_video_max_pixels(const lcc_video_budget *b, int nframes);
// The size every frame of an nframes-frame clip of h x w is resized to (LIVECC.md 3.3): smart_resize with
// min_pixels and the per-frame cap, kept fractional (total/nframes*2) as qwen_vl_utils computes it.
int lcc_video_clip_size(const lcc_video_budget *b, int h, int w, int nframes, int *oh, int *ow);

// Strict-fps clip read (LIVECC.md 3.2): frames whose end pts lie in [start, end] seconds, a grid of
// timestamps every 1/fps from the first of them, the first frame at or after each, at most max_frames,
// the last frame repeated until the count is even; then every frame resized (bicubic, antialiased) to the
// clip's smart_resize size. end < 0 means the end of the video. Errors: missing file, no video stream,
// undecodable data, no frame inside the window.
int lcc_video_read_strict(const char *path, double start, double end, const lcc_video_budget *b, lcc_frames *out);
// Non-strict read for QA samples (LIVECC.md 3.9): nframes = fps * duration floored to even within
// [min_frames, min(max_frames, total frames)], frames picked by linspace(0, total - 1, n).round().
int lcc_video_read_uniform(const char *path, double start, double end, const lcc_video_budget *b, lcc_frames *out);
// A still image (any format FFmpeg decodes), resized by smart_resize with the image pixel bounds; T = 1.
int lcc_image_read(const char *path, const lcc_video_budget *b, lcc_frames *out);

// Bicubic resize of one RGB24 picture (a = -0.5, antialiased when shrinking: the kernel widens by the
// scale factor), as PIL / torchvision bicubic with antialias=True; rounds and clamps to 0..255.
void lcc_resize_bicubic(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow);
// The same resize as a plan for many pictures of one size (taps and scratch made once, as a clip's frames
// need): new, then run per picture (source rows src_stride bytes apart), then free. Same bytes as
// lcc_resize_bicubic, which is new + run + free.
typedef struct lcc_resizer lcc_resizer;
lcc_resizer *lcc_resizer_new(int h, int w, int oh, int ow);
void lcc_resizer_run(lcc_resizer *r, const uint8_t *src, size_t src_stride, uint8_t *dst);
void lcc_resizer_free(lcc_resizer *r);
// The same resize as PIL computes it (8-bit rounding after each pass): LiveCC's still-image path.
// lcc_resize_bicubic follows torchvision (float, one rounding), LiveCC's video path; see resize.c.
void lcc_resize_bicubic_pil(const uint8_t *src, int h, int w, uint8_t *dst, int oh, int ow);

// JPEG through FFmpeg's MJPEG encoder (quality 1..100, libjpeg-like scale) and decoder.
// Encode appends to a growable buffer; decode writes h*w*3 bytes and checks the size it expects.
typedef struct {
  uint8_t *data;
  size_t n, cap;
} lcc_bytes;
int lcc_jpeg_encode(const uint8_t *rgb, int h, int w, int quality, lcc_bytes *out);
int lcc_jpeg_decode(const uint8_t *jpeg, size_t n, int h, int w, uint8_t *rgb);

// Normalized Qwen2-VL patch rows of T frames [T, h, w, 3] (T even; h, w multiples of patch*merge):
// out[(T/2)*(h/14)*(w/14), 3*2*14*14] in the exact row order of QWEN2VL.md 1.2,
// value = (pixel/255 - mean[c]) / std[c]. A still image passes T = 1 (its frame is used twice).
void lcc_patchify(const uint8_t *rgb, int T, int h, int w, int patch, int merge, int temporal,
                  const float mean[3], const float std[3], float *out);

extern const float lcc_clip_mean[3];   // OpenAI CLIP mean and std, Qwen2-VL's image_mean / image_std
extern const float lcc_clip_std[3];

#endif
