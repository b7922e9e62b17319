// livecc-synth: a synthetic LiveCC dataset whose commentary can only be guessed by looking at the frames.
// Each second of a video shows one coloured shape (or nothing, when that second is silent), and the words of
// that second name it. This header is shared by the generator (synth_main.c), the rasterizer
// (synth_draw.c), the video writer (synth_encode.c) and the generator's test.
#ifndef LCC_SYNTH_H
#define LCC_SYNTH_H

#include <stdint.h>

#define LCC_SYNTH_COLOURS 8
#define LCC_SYNTH_SHAPES 8

// Colours chosen to stay distinct after H.264/JPEG and a 112x112 downscale, and from the grey background.
extern const char *const lcc_synth_colour_names[LCC_SYNTH_COLOURS];
extern const uint8_t lcc_synth_palette[LCC_SYNTH_COLOURS][3];   // RGB of each colour
extern const char *const lcc_synth_shape_names[LCC_SYNTH_SHAPES];

typedef enum { LCC_SYNTH_STILL, LCC_SYNTH_LEFT, LCC_SYNTH_RIGHT, LCC_SYNTH_UP, LCC_SYNTH_DOWN } lcc_synth_move;
typedef enum { LCC_SYNTH_MEDIUM, LCC_SYNTH_SMALL, LCC_SYNTH_BIG } lcc_synth_size;

// What one second of a video shows.
typedef struct {
  int silent;              // 1: background only, and no words
  int shape, colour;       // indices into the name tables
  float x0, y0, x1, y1;    // centre of the shape at the start and at the end of the second, pixels
  float radius;            // pixels
  lcc_synth_move move;
  lcc_synth_size size;     // the size word: SMALL and BIG are said, MEDIUM is not
} lcc_synth_second;

// splitmix64: the generator's only source of randomness, so a seed fixes every byte of the output.
uint64_t lcc_synth_next(uint64_t *state);
double lcc_synth_uniform(uint64_t *state);   // [0, 1) with 53 random bits
int lcc_synth_below(uint64_t *state, int n); // 0 .. n-1

// A video's background [h, w, 3]: grey with a gentle tinted gradient and mild fixed noise.
void lcc_synth_background(uint8_t *bg, int h, int w, uint64_t *rng);
// One frame [h, w, 3]: the background with second s's shape drawn at fraction u in [0, 1) of the second,
// antialiased by 2x2 supersampling.
void lcc_synth_draw(uint8_t *rgb, const uint8_t *bg, int h, int w, const lcc_synth_second *s, double u);

// An MP4 file written frame by frame through libavcodec/libavformat: yuv420p, constant frame rate,
// single-threaded and bit-exact flags, so the same frames always give the same bytes.
typedef struct lcc_synth_writer lcc_synth_writer;
// codec: "auto" (libx264 when FFmpeg has it, else mpeg4), "libx264" or "mpeg4". NULL with lcc_error().
lcc_synth_writer *lcc_synth_writer_open(const char *path, int w, int h, int fps, const char *codec);
int lcc_synth_writer_add(lcc_synth_writer *wr, const uint8_t *rgb);   // one RGB24 frame [h, w, 3]
int lcc_synth_writer_close(lcc_synth_writer *wr);                     // flushes, finishes the file, frees
// The encoder "auto" resolves to here; NULL with lcc_error() for an unknown or missing codec.
const char *lcc_synth_codec(const char *codec);

#endif
