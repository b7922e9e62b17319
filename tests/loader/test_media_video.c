// Video reading on real MP4 files encoded here (mpeg4 with B-frames, frame index painted in each picture):
// strict 2 fps picks against the rule worked by hand, the 480 cap, odd-count padding, uniform picks, the
// clip size, and one clear message naming the file for each kind of bad input.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "media_testlib.h"
#include "util.h"

// A small budget: 64 x 96 frames become 56 x 84 whatever the frame count (keeps the 480-frame test small).
static lcc_video_budget small_budget(void) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  b.min_pixels = 4 * 28 * 28;
  return b;
}

// Every output frame shows the expected source frame, and its pts is that frame's end time.
static void expect_frames(const lcc_frames *f, const int *want, int n, double fps) {
  CHECK(f->T == n);
  if (f->T != n) return;
  for (int i = 0; i < n; i++) {
    int got = read_index(f->rgb + (size_t)i * f->h * f->w * 3, f->h, f->w);
    CHECKF(got == want[i], "frame %d shows source frame %d, want %d", i, got, want[i]);
    CHECK(f->pts[i] == (double)(float)((want[i] + 1) / fps));
  }
}

static void check_strict(const char *path, double start, double end, const int *want, int n) {
  lcc_video_budget b = small_budget();
  lcc_frames f;
  if (!CHECKF(lcc_video_read_strict(path, start, end, &b, &f) == 0, "%s", lcc_last_error())) return;
  CHECK(f.h == 56 && f.w == 84);
  expect_frames(&f, want, n, 10.0);
  lcc_frames_free(&f);
}

// 10 fps, 73 frames: frame i ends at float32((i + 1) / 10). The float32 rounding matters: 4.2 and 4.7 are
// stored just below (4.1999998, 4.6999998), so the timestamps 1.2000000477 + k/2 at k = 6, 7 pick the frames
// ending at 4.3 and 4.8, while 1.2, 1.7, ..., 3.7 are stored just above and tie with their timestamps.
static void test_strict(const char *v10) {
  // [1.2, 5.0]: frames 11..49; timestamps 1.2 + k/2 for k < ceil((5.0 + 1e-6 - 1.2) / 0.5) = 8.
  int a[] = {11, 16, 21, 26, 31, 36, 42, 47};
  check_strict(v10, 1.2, 5.0, a, 8);
  // [1.2, 3.5]: 5 timestamps (1.2 .. 3.2), the last pick repeated to make the count even.
  int b[] = {11, 16, 21, 26, 31, 31};
  check_strict(v10, 1.2, 3.5, b, 6);
  // [1.2, 4.7]: the last timestamp 4.7000000477 lies above the last end time 4.6999998 (within the 1e-6):
  // LiveCC's argmax would wrap to frame 11 there; we take the last frame of the window, 46.
  int c[] = {11, 16, 21, 26, 31, 36, 42, 46};
  check_strict(v10, 1.2, 4.7, c, 8);
  // [1.3, 2.0]: LiveCC's NumPy compares the bounds in float32, so the frame ending at float32(1.3) =
  // 1.2999999523 is inside (in float64 it would not be); timestamps 1.2999999523 and 1.7999999523.
  int e[] = {12, 17};
  check_strict(v10, 1.3, 2.0, e, 2);
  // Whole video (end < 0): 0.1 + k/2 for 15 timestamps, padded to 16.
  int d[] = {0, 5, 10, 15, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 71};
  check_strict(v10, 0, -1, d, 16);
}

// 250 s at 4 fps: 500 timestamps 0.25 + k/2, of which the first 480 are kept; frame 2k ends at 0.25 + k/2.
static void test_cap(const char *v1000) {
  lcc_video_budget b = small_budget();
  lcc_frames f;
  CHECK(lcc_video_read_strict(v1000, 0, -1, &b, &f) == 0);
  int *want = lcc_malloc(sizeof(int) * 480);
  for (int k = 0; k < 480; k++) want[k] = 2 * k;
  expect_frames(&f, want, 480, 4.0);
  CHECK(f.T == 480 && f.pts[479] == 239.75);
  free(want);
  lcc_frames_free(&f);
  b.max_frames = 7;   // an odd cap: 7 picks, then the last repeated
  CHECK(lcc_video_read_strict(v1000, 0, -1, &b, &f) == 0);
  int seven[] = {0, 2, 4, 6, 8, 10, 12, 12};
  expect_frames(&f, seven, 8, 4.0);
  lcc_frames_free(&f);
}

static void test_uniform(const char *v10) {
  lcc_video_budget b = small_budget();
  lcc_frames f;
  // 73 frames at 10 fps: n = 73 / 10 * 2 = 14.6 -> 14; linspace(0, 72, 14).round() (5.54 -> 6, 16.6 -> 17, ...).
  CHECK(lcc_video_read_uniform(v10, 0, -1, &b, &f) == 0);
  int all[] = {0, 6, 11, 17, 22, 28, 33, 39, 44, 50, 55, 61, 66, 72};
  expect_frames(&f, all, 14, 10.0);
  lcc_frames_free(&f);
  // [1.2, 5.0]: 39 frames, n = 7.8 -> 6, picks 11 + linspace(0, 38, 6).round() = 11 + {0, 8, 15, 23, 30, 38}.
  CHECK(lcc_video_read_uniform(v10, 1.2, 5.0, &b, &f) == 0);
  int win[] = {11, 19, 26, 34, 41, 49};
  expect_frames(&f, win, 6, 10.0);
  lcc_frames_free(&f);
  // A 4-frame minimum when the clip is short: [1.2, 1.5] holds 4 frames, n = 0.8 -> 4.
  CHECK(lcc_video_read_uniform(v10, 1.2, 1.5, &b, &f) == 0);
  int shortw[] = {11, 12, 13, 14};
  expect_frames(&f, shortw, 4, 10.0);
  lcc_frames_free(&f);
  // One frame in the window is too few.
  CHECK(lcc_video_read_uniform(v10, 1.15, 1.25, &b, &f) == -1);
  CHECK(strstr(lcc_last_error(), v10) && strstr(lcc_last_error(), "need at least 2"));
}

// The default budget: 8 frames of 64 x 96 are below min_pixels, so smart_resize scales them up to
// 252 x 364 (beta = sqrt(78400 / 6144) = 3.572; ceil(8.17) = 9 and ceil(12.25) = 13 blocks of 28).
static void test_default_size(const char *v10) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  lcc_frames f;
  CHECK(lcc_video_read_strict(v10, 1.2, 5.0, &b, &f) == 0);
  CHECK(f.T == 8 && f.h == 252 && f.w == 364);
  int a[] = {11, 16, 21, 26, 31, 36, 42, 47};
  expect_frames(&f, a, 8, 10.0);
  lcc_frames_free(&f);
}

static void expect_read_error(const char *path, double start, double end, const char *want) {
  lcc_video_budget b = small_budget();
  lcc_frames f;
  CHECK(lcc_video_read_strict(path, start, end, &b, &f) == -1);
  CHECK(error_has(path, want, NULL));
  CHECK(f.T == 0 && f.rgb == NULL);
}

// A WAV file: 0.25 s of a 440 Hz tone, 8 kHz mono 16-bit PCM.
static void write_wav(const char *path) {
  enum { RATE = 8000, N = 2000 };
  uint8_t buf[44 + 2 * N];
  uint32_t fields[] = {36 + 2 * N, 16, 1 | (1 << 16), RATE, 2 * RATE, 2 | (16 << 16), 2 * N};
  memcpy(buf, "RIFF", 4);
  memcpy(buf + 4, &fields[0], 4);
  memcpy(buf + 8, "WAVEfmt ", 8);
  memcpy(buf + 16, &fields[1], 20);
  memcpy(buf + 36, "data", 4);
  memcpy(buf + 40, &fields[6], 4);
  for (int i = 0; i < N; i++) {
    int16_t s = (int16_t)(8000 * sin(2 * M_PI * 440 * i / RATE));
    memcpy(buf + 44 + 2 * i, &s, 2);
  }
  write_file(path, buf, sizeof buf);
}

static void test_bad_inputs(const char *v10) {
  expect_read_error(tmp_path("missing.mp4"), 0, -1, "No such file");
  uint8_t junk[4096];
  uint32_t s = 12345;
  for (size_t i = 0; i < sizeof junk; i++) s = s * 1664525u + 1013904223u, junk[i] = (uint8_t)(s >> 24);
  write_file(tmp_path("random.mp4"), junk, sizeof junk);
  expect_read_error(tmp_path("random.mp4"), 0, -1, "");
  write_file(tmp_path("empty.mp4"), NULL, 0);
  expect_read_error(tmp_path("empty.mp4"), 0, -1, "cannot open");
  size_t n;
  char *whole = lcc_read_file(v10, &n);
  LCC_CHECK(whole, "%s", lcc_last_error());
  write_file(tmp_path("truncated.mp4"), whole, n / 2);   // the index (moov) is written last: gone
  free(whole);
  expect_read_error(tmp_path("truncated.mp4"), 0, -1, "");
  expect_read_error(v10, 10.0, 20.0, "no frame ends inside [10.000, 20.000] s (frames end from 0.100 to 7.300 s)");
  write_wav(tmp_path("tone.wav"));
  expect_read_error(tmp_path("tone.wav"), 0, -1, "no video stream");
}

// Several threads reading (and JPEG-coding) at once get what one thread gets: no shared state.
typedef struct {
  const char *path;
  const lcc_frames *want;
  int same;
} thread_job;

static void *read_in_thread(void *arg) {
  thread_job *job = arg;
  lcc_video_budget b = small_budget();
  job->same = 1;
  for (int round = 0; round < 3; round++) {
    lcc_frames f;
    lcc_bytes jpg = {0};
    if (lcc_video_read_strict(job->path, 1.2, 5.0, &b, &f) || f.T != job->want->T ||
        memcmp(f.rgb, job->want->rgb, (size_t)f.T * f.h * f.w * 3) || lcc_jpeg_encode(f.rgb, f.h, f.w, 90, &jpg) ||
        lcc_jpeg_decode(jpg.data, jpg.n, f.h, f.w, f.rgb))
      job->same = 0;
    free(jpg.data);
    lcc_frames_free(&f);
  }
  return NULL;
}

static void test_threads(const char *v10) {
  lcc_video_budget b = small_budget();
  lcc_frames want;
  CHECK(lcc_video_read_strict(v10, 1.2, 5.0, &b, &want) == 0);
  pthread_t th[4];
  thread_job jobs[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (thread_job){.path = v10, .want = &want};
    CHECK(pthread_create(&th[i], NULL, read_in_thread, &jobs[i]) == 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK(jobs[i].same);
  }
  lcc_frames_free(&want);
}

int main(void) {
  test_tmpdir_init();
  char v10[1200], v1000[1200];
  snprintf(v10, sizeof v10, "%s", tmp_path("v10.mp4"));
  snprintf(v1000, sizeof v1000, "%s", tmp_path("v1000.mp4"));
  write_test_video(v10, 96, 64, 10, 73, 2);
  write_test_video(v1000, 96, 64, 4, 1000, 2);
  test_strict(v10);
  test_cap(v1000);
  test_uniform(v10);
  test_default_size(v10);
  test_bad_inputs(v10);
  test_threads(v10);
  return test_finish("test_media_video");
}
