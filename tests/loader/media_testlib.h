// Helpers for the media tests: a check counter, a scratch directory, test videos encoded with libavcodec
// (frame index painted into the picture, so a decoded frame says which one it is), and test pictures.
#ifndef LCC_MEDIA_TESTLIB_H
#define LCC_MEDIA_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      test_failures++;                                                         \
    }                                                                          \
  } while (0)

// TEST_TMPDIR (created) or /tmp/lcc-test-<pid>; tmp_path returns a path inside it (static buffer per slot).
void test_tmpdir_init(void);
const char *tmp_path(const char *name);
void write_file(const char *path, const void *data, size_t n);
int test_finish(const char *name);   // prints OK or the failure count, returns the exit status

// Frame i of a test video: three vertical bands of flat gray, the base-16 digits of i (low, middle, high)
// at levels 16*digit + 8, so a decode can be identified at any size and survives lossy coding (+-7).
void paint_index(int i, int h, int w, uint8_t *rgb);
// The index read back from a frame [h, w, 3] by sampling the centre of each band; -1 if a band is not flat.
int read_index(const uint8_t *rgb, int h, int w);

// Encodes nframes painted frames (w x h, even) at `fps` frames per second into an MP4 with FFmpeg's mpeg4
// encoder (high quality, B-frames when bframes > 0 so decode order differs from presentation order).
void write_test_video(const char *path, int w, int h, int fps, int nframes, int bframes);

// A natural-looking picture: gradients, a sine, hard-edged rectangles, mild noise (deterministic per seed).
void natural_picture(uint8_t *rgb, int h, int w, unsigned seed);

#endif
