// livecc-synth: writes a small LiveCC-format dataset whose commentary can only be guessed from the frames.
//   livecc-synth [--config FILE] --output DIR [--key=value | --key value ...]
// Every second of a video shows one shape of one colour at a random place and size (or, in a silent
// second, only the background); the words of that second name it: "[now] a [small|big] <colour> <shape>
// [moving left|right|up|down]". Shape, colour, size, place, motion and silence are drawn independently per
// second from a seeded splitmix64, so without the frames a model can only guess them (1/8 for the colour
// and 1/8 for the shape); only the filler words follow from the text.
//
// Output (see write_readme): videos/vid-NNNN.mp4, pretrain.jsonl (Live-CC-5M form), sft.jsonl and
// heldout.jsonl (Live-WhisperX form), each with LiveCC's seek-index last line, tokenizer.json, README.txt.
//
// Alignment with LiveCC's reader (LIVECC.md 3.2, 3.4), with the numbers for the default 8 fps. Frame i covers
// [i/8, (i+1)/8) and the reader knows it by its END pts (i+1)/8; at a power-of-two rate every pts is an
// exact binary fraction, so no comparison below can be moved by rounding.
//   P = 0.375, the smallest frame end >= 0.35 (3 frames), is the phase of the 2 fps grid;
//   the words of second m lie in [m + A, m + E] = [m + 0.36, m + 0.82]: A is P floored to 0.01 s minus
//   0.01, E is P + 0.5 floored to 0.01 s minus 0.05 (span_for).
// A clip starts at its first word, video_start = k0 + 0.36, so its first kept frame ends at k0 + 0.375
// (frame 8*k0 + 2, showing second k0) and the grid points are m + 0.375 and m + 0.875: the two frames of
// each later chunk cover [m + 0.25, m + 0.375) and [m + 0.75, m + 0.875), both inside second m. A chunk
// takes the words whose end is <= its last frame's pts m + 0.875: every word of second m ends by m + 0.82,
// and every word of second m + 1 starts at m + 1.36, so the words of second m land in the chunk that
// shows second m (the first chunk, 6 frames, shows seconds k0..k0+2 and takes their words).
// A clip ends at the last word of its last spoken second b: video_end = b + 0.82. The last kept frame ends
// at b + 0.75, the grid stops at b + 0.375 (b + 0.875 is past it), the odd frame count repeats that frame,
// and the last chunk (pts b + 0.375) takes no word, because the first word of second b ends no earlier than
// b + 0.36 + 0.46/7 = b + 0.43 (at most 7 words share the 0.46 s). LiveCC trims that trailing silent turn:
// like the last word of a Live-CC-5M clip, which ends after the last sampled frame, second b is in the
// JSON but not trained on. Every word's end lies in (m + 0.05, m + 0.95). The same argument holds at 2, 4,
// 16 and 32 fps (P = 0.5, 0.5, 0.375, 0.375); tests/loader/test_synth.c checks it at 8 and 16 fps by decoding
// the videos and replaying the sampling rule.
#include <errno.h>
#include <libavutil/log.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runconfig.h"
#include "synth.h"
#include "util.h"

typedef struct {
  char output[LCC_OPT_STR];
  int videos, heldout, seconds, seed;
  int width, height, fps;
  double silence, motion, min_radius, max_radius;
  int sizes;
  char shapes[LCC_OPT_STR];
  char codec[LCC_OPT_STR];
  char tokenizer[LCC_OPT_STR];
} synth_opts;

static const lcc_opt opt_table[] = {
    {"output", LCC_OPT_STRING, offsetof(synth_opts, output), "", "output directory (required)"},
    {"videos", LCC_OPT_INT, offsetof(synth_opts, videos), "100", "training videos (pretrain.jsonl and sft.jsonl)"},
    {"heldout", LCC_OPT_INT, offsetof(synth_opts, heldout), "16", "held-out videos (heldout.jsonl)"},
    {"seconds", LCC_OPT_INT, offsetof(synth_opts, seconds), "30", "length of every video, 4..240 s"},
    {"seed", LCC_OPT_INT, offsetof(synth_opts, seed), "1", "random seed: the same seed gives byte-identical files"},
    {"width", LCC_OPT_INT, offsetof(synth_opts, width), "112", "frame width, even, 64..4096"},
    {"height", LCC_OPT_INT, offsetof(synth_opts, height), "112", "frame height, even, 64..4096"},
    {"fps", LCC_OPT_INT, offsetof(synth_opts, fps), "8", "frame rate: 2, 4, 8, 16 or 32 (exact frame times)"},
    {"silence", LCC_OPT_FLOAT, offsetof(synth_opts, silence), "0.1", "chance that an inner second is silent (no shape)"},
    {"motion", LCC_OPT_FLOAT, offsetof(synth_opts, motion), "0.25", "chance that a shape moves during its second"},
    {"sizes", LCC_OPT_BOOL, offsetof(synth_opts, sizes), "true", "say 'small' and 'big' for small and big shapes"},
    {"shapes", LCC_OPT_STRING, offsetof(synth_opts, shapes), "circle,square,triangle,star,cross,ring,diamond,heart",
     "the shapes drawn, comma-separated (a subset of the default)"},
    {"min_radius", LCC_OPT_FLOAT, offsetof(synth_opts, min_radius), "0.12", "smallest shape radius, as a fraction of the shorter side"},
    {"max_radius", LCC_OPT_FLOAT, offsetof(synth_opts, max_radius), "0.30", "largest shape radius, as a fraction of the shorter side"},
    {"codec", LCC_OPT_STRING, offsetof(synth_opts, codec), "auto", "auto (libx264, else mpeg4), libx264 or mpeg4"},
    {"tokenizer", LCC_OPT_STRING, offsetof(synth_opts, tokenizer), "configs/tokenizer/tiny/tokenizer.json",
     "tokenizer.json to copy into the output (\"\": none)"},
};
static const int opt_count = (int)(sizeof opt_table / sizeof opt_table[0]);

enum { MAX_WORDS = 7 };   // "now a small red circle moving left"

static const char *const move_names[] = {"", "left", "right", "up", "down"};
static const char *const queries[] = {"Describe the shapes as they appear.",
                                      "Name the colour and the shape of everything that appears.",
                                      "Commentate on the shapes you see, as they appear."};

// ---- the plan: what each second shows and says ---------------------------------------------------------

typedef struct {
  int start_cs, end_cs;   // centiseconds of the video
  const char *word;
} timed_word;

// Where a second's words go, in centiseconds from the start of the second (see the alignment comment).
typedef struct {
  int a_cs, e_cs;
} word_span;

static word_span span_for(int fps) {
  int p_frames = (35 * fps + 99) / 100;   // P = p_frames / fps, the smallest frame end >= 0.35 s
  word_span s = {100 * p_frames / fps - 1, (100 * p_frames + 50 * fps) / fps - 5};
  return s;
}

// An independent stream per (seed, stream id): the video content never depends on how many videos there are
// or on the clip choices.
static uint64_t stream_state(int seed, uint64_t id) {
  uint64_t s = (uint64_t)(uint32_t)seed;
  return lcc_synth_next(&s) ^ (id * 0xD1B54A32D192ED03ull);
}

// Draws what each of the S seconds of one video shows. Seconds 0 and S-1 always show a shape, so every clip
// has a first and a last spoken second.
static int shape_pool[LCC_SYNTH_SHAPES], n_shapes;   // the shapes allowed (indices into lcc_synth_shape_names)

static void plan_video(const synth_opts *o, uint64_t *rng, lcc_synth_second *sec) {
  int S = o->seconds, w = o->width, h = o->height, side = w < h ? w : h;
  for (int k = 0; k < S; k++) {
    lcc_synth_second *s = &sec[k];
    memset(s, 0, sizeof *s);
    s->silent = k > 0 && k < S - 1 && lcc_synth_uniform(rng) < o->silence;
    if (s->silent) continue;
    s->shape = shape_pool[lcc_synth_below(rng, n_shapes)];
    s->colour = lcc_synth_below(rng, LCC_SYNTH_COLOURS);
    double frac = o->min_radius + (o->max_radius - o->min_radius) * lcc_synth_uniform(rng);   // radius / shorter side
    s->size = frac < 0.16 ? LCC_SYNTH_SMALL : frac > 0.26 ? LCC_SYNTH_BIG : LCC_SYNTH_MEDIUM;
    s->radius = (float)(frac * side);
    s->move = lcc_synth_uniform(rng) < o->motion ? (lcc_synth_move)(1 + lcc_synth_below(rng, 4)) : LCC_SYNTH_STILL;
    double dx = s->move == LCC_SYNTH_LEFT ? -0.3 * w : s->move == LCC_SYNTH_RIGHT ? 0.3 * w : 0;
    double dy = s->move == LCC_SYNTH_UP ? -0.3 * h : s->move == LCC_SYNTH_DOWN ? 0.3 * h : 0;
    // The centre stays >= radius + 2 px from every edge over the whole path.
    double lo = s->radius + 2, hix = w - s->radius - 2, hiy = h - s->radius - 2;
    double x0 = (dx < 0 ? lo - dx : lo) + lcc_synth_uniform(rng) * (hix - lo - (dx < 0 ? -dx : dx));
    double y0 = (dy < 0 ? lo - dy : lo) + lcc_synth_uniform(rng) * (hiy - lo - (dy < 0 ? -dy : dy));
    s->x0 = (float)x0, s->y0 = (float)y0, s->x1 = (float)(x0 + dx), s->y1 = (float)(y0 + dy);
  }
}

// The words of second k, timed inside the second; returns how many (0 for a silent second).
static int second_words(const lcc_synth_second *sec, int k, word_span span, int sizes, timed_word *out) {
  const lcc_synth_second *s = &sec[k];
  if (s->silent) return 0;
  const char *w[MAX_WORDS];
  int n = 0;
  if (k > 0 && !sec[k - 1].silent) w[n++] = "now";
  w[n++] = "a";
  if (sizes && s->size != LCC_SYNTH_MEDIUM) w[n++] = s->size == LCC_SYNTH_SMALL ? "small" : "big";
  w[n++] = lcc_synth_colour_names[s->colour];
  w[n++] = lcc_synth_shape_names[s->shape];
  if (s->move != LCC_SYNTH_STILL) w[n++] = "moving", w[n++] = move_names[s->move];
  int len = span.e_cs - span.a_cs;
  for (int i = 0; i < n; i++) {   // n equal slots over [a, e], rounded to 0.01 s
    out[i].start_cs = 100 * k + span.a_cs + (i * len + n / 2) / n;
    out[i].end_cs = 100 * k + span.a_cs + ((i + 1) * len + n / 2) / n;
    out[i].word = w[i];
  }
  return n;
}

// ---- JSONL ---------------------------------------------------------------------------------------------

typedef struct {
  char *s;
  size_t n, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  LCC_CHECK(need >= 0, "vsnprintf failed");
  if (t->n + (size_t)need + 1 > t->cap) {
    t->cap = 2 * (t->n + (size_t)need + 1);
    t->s = lcc_realloc(t->s, t->cap);
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->n, (size_t)need + 1, fmt, ap);
  va_end(ap);
  t->n += (size_t)need;
}

// A time in centiseconds as a JSON number: 1234 -> "12.34".
static void put_time(text *t, int cs) { put(t, "%d.%02d", cs / 100, cs % 100); }

// One clip of one video, from the first spoken second >= from to the last second of the video.
typedef struct {
  int video;             // index: videos/vid-NNNN.mp4
  int from;              // first second the clip may start in
  const char *query;     // "" for pre-training
  const char *previous;  // words spoken before the clip (SFT form; not used by LiveCC's SFT)
} clip;

// Appends one sample line (json.dumps style: ", " and ": " separators, pure ASCII; our strings need no
// escaping).
static void put_sample(text *t, const synth_opts *o, const lcc_synth_second *sec, const clip *c) {
  word_span span = span_for(o->fps);
  put(t, "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"videos/vid-%04d.mp4\", ", c->video);
  timed_word words[MAX_WORDS];
  int k0 = c->from;
  while (sec[k0].silent) k0++;   // second S-1 is never silent
  int first = 1;
  text stream = {0};
  for (int k = k0; k < o->seconds; k++) {
    int n = second_words(sec, k, span, o->sizes, words);
    for (int i = 0; i < n; i++) {
      if (first) {
        put(t, "\"video_start\": ");
        put_time(t, words[i].start_cs);
        first = 0;
      } else {
        put(&stream, ", ");
      }
      put(&stream, "[");
      put_time(&stream, words[i].start_cs);
      put(&stream, ", ");
      put_time(&stream, words[i].end_cs);
      put(&stream, ", \"%s\"]", words[i].word);
    }
    if (k == o->seconds - 1) {
      put(t, ", \"video_end\": ");
      put_time(t, words[n - 1].end_cs);
    }
  }
  // one title for every video: a title that named the video would let a model learn each training video's
  // words by heart instead of reading its frames
  put(t, "}, {\"type\": \"text\", \"text\": \"%s\", \"previous\": \"%s\", \"title\": \"Shapes and colours\"}]}, ",
      c->query, c->previous);
  put(t, "{\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", \"text_stream\": [%s]}]}]\n", stream.s);
  free(stream.s);
}

// The words of seconds [0, k) joined by spaces (Live-WhisperX's "previous"), into t.
static void put_previous(text *t, const synth_opts *o, const lcc_synth_second *sec, int k) {
  timed_word words[MAX_WORDS];
  t->n = 0;
  put(t, "%s", "");   // allocates: a video's first clip has an empty, but valid, string
  for (int j = 0; j < k; j++) {
    int n = second_words(sec, j, span_for(o->fps), o->sizes, words);
    for (int i = 0; i < n; i++) put(t, "%s%s", t->n ? " " : "", words[i].word);
  }
}

static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return lcc_error("%s: cannot create: %s", path, strerror(errno));
  size_t wrote = fwrite(data, 1, n, f);
  int bad = wrote != n || ferror(f);
  if (fclose(f) || bad) return lcc_error("%s: write failed: %s", path, strerror(errno));
  return 0;
}

// Writes the sample lines and then LiveCC's seek index: a JSON array of the byte offset of every sample
// line, as the file's last line, with no trailing newline (LIVECC.md 2.1).
static int write_jsonl(const char *path, const synth_opts *o, lcc_synth_second *const *plans, const clip *clips, int n) {
  text t = {0}, index = {0};
  put(&index, "[");
  for (int i = 0; i < n; i++) {
    put(&index, "%s%zu", i ? ", " : "", t.n);
    put_sample(&t, o, plans[clips[i].video], &clips[i]);
  }
  put(&index, "]");
  put(&t, "%s", index.s);
  int rc = write_file(path, t.s, t.n);
  free(t.s);
  free(index.s);
  return rc;
}

// ---- videos --------------------------------------------------------------------------------------------

static int write_video(const char *path, const synth_opts *o, const lcc_synth_second *sec, uint64_t *rng,
                       const char *codec) {
  int w = o->width, h = o->height;
  uint8_t *bg = lcc_malloc((size_t)h * w * 3), *rgb = lcc_malloc((size_t)h * w * 3);   // [h, w, 3] each
  lcc_synth_background(bg, h, w, rng);
  lcc_synth_writer *wr = lcc_synth_writer_open(path, w, h, o->fps, codec);
  int rc = wr ? 0 : -1;
  for (int i = 0; !rc && i < o->seconds * o->fps; i++) {
    // Frame i shows second i / fps, at the middle of its own time span within that second.
    lcc_synth_draw(rgb, bg, h, w, &sec[i / o->fps], (i % o->fps + 0.5) / o->fps);
    rc = lcc_synth_writer_add(wr, rgb);
  }
  if (wr && lcc_synth_writer_close(wr)) rc = -1;
  free(bg);
  free(rgb);
  return rc;
}

// ---- the run -------------------------------------------------------------------------------------------

static int make_dir(const char *path) {
  char buf[LCC_OPT_STR + 64];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {   // parents first, like mkdir -p
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST) return lcc_error("%s: cannot create directory: %s", buf, strerror(errno));
  return 0;
}

static int check_opts(const synth_opts *o) {
  if (!o->output[0]) return lcc_error("key 'output' is required: --output DIR");
  if (o->videos < 1 || o->heldout < 0 || o->videos + o->heldout > 10000)
    return lcc_error("keys 'videos' (>= 1) and 'heldout' (>= 0) must add up to at most 10000, got %d and %d",
                     o->videos, o->heldout);
  if (o->seconds < 4 || o->seconds > 240)   // >= 4: the first chunk holds 3 s; <= 240: LiveCC's 480 frames
    return lcc_error("key 'seconds' must be 4..240, got %d", o->seconds);
  if (o->width < 64 || o->width > 4096 || o->width % 2 || o->height < 64 || o->height > 4096 || o->height % 2)
    return lcc_error("keys 'width' and 'height' must be even and 64..4096, got %dx%d", o->width, o->height);
  if (o->fps < 2 || o->fps > 32 || (o->fps & (o->fps - 1)))
    return lcc_error("key 'fps' must be 2, 4, 8, 16 or 32 (frame times exact in binary), got %d", o->fps);
  if (!(o->silence >= 0 && o->silence <= 0.9)) return lcc_error("key 'silence' must be 0..0.9, got %g", o->silence);
  if (!(o->motion >= 0 && o->motion <= 1)) return lcc_error("key 'motion' must be 0..1, got %g", o->motion);
  n_shapes = 0;
  for (const char *p = o->shapes; *p;) {
    size_t len = strcspn(p, ",");
    int found = -1;
    for (int k = 0; k < LCC_SYNTH_SHAPES; k++)
      if (strlen(lcc_synth_shape_names[k]) == len && !strncmp(p, lcc_synth_shape_names[k], len)) found = k;
    if (found < 0) return lcc_error("key 'shapes': unknown shape '%.*s'", (int)len, p);
    shape_pool[n_shapes++ % LCC_SYNTH_SHAPES] = found;
    p += len + (p[len] == ',');
  }
  if (n_shapes < 1 || n_shapes > LCC_SYNTH_SHAPES) return lcc_error("key 'shapes' must name 1 to %d shapes", LCC_SYNTH_SHAPES);
  // the largest radius must leave the shape room to move 30% of the frame and stay 2 px off the edges
  if (!(o->min_radius >= 0.05 && o->min_radius <= o->max_radius && o->max_radius <= 0.34))
    return lcc_error("keys 'min_radius' and 'max_radius' must satisfy 0.05 <= min <= max <= 0.34, got %g and %g",
                     o->min_radius, o->max_radius);
  if (o->tokenizer[0] && access(o->tokenizer, R_OK))   // checked before any video is written
    return lcc_error("key 'tokenizer': %s: %s (run from the repository root, pass --tokenizer=FILE, or --tokenizer= "
                     "for none)", o->tokenizer, strerror(errno));
  return 0;
}

static int parse_args(synth_opts *o, int argc, char **argv) {
  return lcc_opts_parse_argv(o, opt_table, opt_count, argc, argv) || check_opts(o) ? -1 : 0;
}

static int copy_tokenizer(const synth_opts *o) {
  if (!o->tokenizer[0]) return 0;
  size_t n;
  char *data = lcc_read_file(o->tokenizer, &n);
  if (!data) return lcc_error("key 'tokenizer': %s", lcc_last_error());
  char path[LCC_OPT_STR + 32];
  snprintf(path, sizeof path, "%s/tokenizer.json", o->output);
  int rc = write_file(path, data, n);
  free(data);
  return rc;
}

static int write_readme(const synth_opts *o, const char *codec) {
  char path[LCC_OPT_STR + 32];
  snprintf(path, sizeof path, "%s/README.txt", o->output);
  word_span span = span_for(o->fps);
  text t = {0};
  put(&t, "A synthetic LiveCC dataset written by livecc-synth (launch/synth_main.c).\n\n"
          "Every second of a video shows one shape (circle, square, triangle, star, cross, ring, diamond,\n"
          "heart) of one colour (red, green, blue, yellow, orange, purple, white, black) at a random place\n"
          "and size on a grey background, or, in a silent second, only the background. The words of that\n"
          "second name it: \"[now] a [small|big] <colour> <shape> [moving left|right|up|down]\" (\"now\" when\n"
          "the previous second showed a shape). Shapes, colours, sizes, places, motion and silence are drawn\n"
          "independently per second, so only the frames tell what will be said.\n\n");
  put(&t, "videos/vid-NNNN.mp4  %d x %d, %d fps, %d s, yuv420p %s. vid-0000..vid-%04d are the training\n"
          "                     videos, vid-%04d..vid-%04d the held-out ones.\n",
      o->width, o->height, o->fps, o->seconds, codec, o->videos - 1, o->videos, o->videos + o->heldout - 1);
  put(&t, "pretrain.jsonl       Live-CC-5M form, one clip per training video from its first word: empty\n"
          "                     text, empty previous, a title.\n"
          "sft.jsonl            Live-WhisperX form, the same training videos with a later clip start (where\n"
          "                     a phrase starts after a silent second, or at 0): the text is a query, previous\n"
          "                     holds the words before the clip, and title is set (LiveCC's SFT uses neither).\n"
          "heldout.jsonl        as sft.jsonl, on the held-out videos.\n"
          "tokenizer.json       %s\n\n",
      o->tokenizer[0] ? "a copy of the tiny tokenizer (every word here is one token with its leading space)"
                      : "(not copied: --tokenizer was empty)");
  put(&t, "Each JSONL file ends with LiveCC's seek index: a JSON array of the byte offset of every sample\n"
          "line, as the last line, without a trailing newline. Video paths are relative to this directory.\n\n"
          "Timing: the words of second m lie in [m+%d.%02d, m+%d.%02d] s. A clip runs from its first word to the\n"
          "last word of the video's last second; with LiveCC's 2 fps sampling by frame end time the words of\n"
          "each second fall in the 1-second chunk whose frames show that second, and the last second's words\n"
          "end after the last sampled frame (so that second is not trained on, as in Live-CC-5M).\n\n"
          "Configuration (these lines, saved as a file, work with livecc-synth --config FILE):\n",
      span.a_cs / 100, span.a_cs % 100, span.e_cs / 100, span.e_cs % 100);
  char *conf = lcc_opts_text(o, opt_table, opt_count);
  put(&t, "%s", conf);
  free(conf);
  int rc = write_file(path, t.s, t.n);
  free(t.s);
  return rc;
}

static int run(const synth_opts *o) {
  const char *codec = lcc_synth_codec(o->codec);
  char path[LCC_OPT_STR + 64];
  snprintf(path, sizeof path, "%s/videos", o->output);
  if (!codec || make_dir(path)) return -1;
  int V = o->videos + o->heldout, S = o->seconds;
  lcc_synth_second **plans = lcc_calloc((size_t)V, sizeof *plans);   // [V][S]
  clip *clips = lcc_calloc((size_t)V, sizeof *clips);
  text *previous = lcc_calloc((size_t)V, sizeof *previous);
  int rc = 0;
  double t0 = lcc_now();
  for (int v = 0; v < V && !rc; v++) {
    uint64_t rng = stream_state(o->seed, 2 * (uint64_t)v);
    plans[v] = lcc_malloc((size_t)S * sizeof **plans);
    plan_video(o, &rng, plans[v]);
    snprintf(path, sizeof path, "%s/videos/vid-%04d.mp4", o->output, v);
    rc = write_video(path, o, plans[v], &rng, codec);
    // The SFT / held-out clip starts where a phrase starts, as Live-WhisperX clips start at a sentence
    // (LIVECC.md 6): at the first spoken second after a silent one, from a random second 1..S-4 on, so its
    // first word is "a" (a "now" would depend on a second the clip does not show). Without such a second, or
    // with fewer than 3 seconds left before the last one (LiveCC's first chunk holds 3 s), it starts at 0.
    uint64_t crng = stream_state(o->seed, 2 * (uint64_t)v + 1);
    int from = S > 4 ? 1 + lcc_synth_below(&crng, S - 4) : 0;
    while (from > 0 && from < S && (plans[v][from].silent || !plans[v][from - 1].silent)) from++;
    if (from >= S || S - 1 - from < 3) from = 0;
    put_previous(&previous[v], o, plans[v], from);
    clips[v] = (clip){v, from, queries[lcc_synth_below(&crng, 3)], previous[v].s};
  }
  double t_video = lcc_now() - t0;
  if (!rc) {   // pre-training: the training videos from their first word, no query, no previous text
    clip *pt = lcc_calloc((size_t)o->videos, sizeof *pt);
    for (int v = 0; v < o->videos; v++) pt[v] = (clip){v, 0, "", ""};
    snprintf(path, sizeof path, "%s/pretrain.jsonl", o->output);
    rc = write_jsonl(path, o, plans, pt, o->videos);
    free(pt);
  }
  snprintf(path, sizeof path, "%s/sft.jsonl", o->output);
  if (!rc) rc = write_jsonl(path, o, plans, clips, o->videos);
  snprintf(path, sizeof path, "%s/heldout.jsonl", o->output);
  if (!rc) rc = write_jsonl(path, o, plans, clips + o->videos, o->heldout);
  if (!rc) rc = copy_tokenizer(o);
  if (!rc) rc = write_readme(o, codec);
  if (!rc)
    printf("# wrote %d videos (%s, %d frames each) in %.2f s, %d pretrain / %d sft / %d heldout samples, to %s\n",
           V, codec, S * o->fps, t_video, o->videos, o->videos, o->heldout, o->output);
  for (int v = 0; v < V; v++) free(plans[v]), free(previous[v].s);
  free(plans);
  free(clips);
  free(previous);
  return rc;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: livecc-synth [--config FILE] --output DIR [--key=value | --key value ...]\n"
             "Keys (a config file holds the same keys as 'key = value' lines; flags win):\n");
      lcc_opts_usage(opt_table, opt_count, stdout);
      return 0;
    }
  synth_opts o;
  if (parse_args(&o, argc, argv)) {
    fprintf(stderr, "livecc-synth: error: %s\n", lcc_last_error());
    return 2;
  }
  av_log_set_level(AV_LOG_WARNING);   // not libx264's per-file statistics
  printf("# livecc-synth resolved configuration\n");
  lcc_opts_print(&o, opt_table, opt_count, stdout);
  fflush(stdout);
  if (run(&o)) {
    fprintf(stderr, "livecc-synth: error: %s\n", lcc_last_error());
    return 1;
  }
  return 0;
}
