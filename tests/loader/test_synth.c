// livecc-synth end to end: runs the generator (argv[1]) into TEST_TMPDIR, then checks
//   - the JSONL files: pure ASCII, every line parses, the seek index (last line, no trailing newline)
//     points at every sample line start, the fields of Live-CC-5M / Live-WhisperX samples;
//   - the words: vocabulary and grammar, one colour and one shape per spoken second, timestamps inside the
//     second with every end in (k + 0.05, k + 0.95), video_start / video_end = first start / last end;
//   - the videos: decode with libavformat, frame count, size, exact frame end times, duration;
//   - the alignment: LiveCC's strict 2 fps sampling (LIVECC.md 3.2) and word bucketing (3.4) replayed on the
//     decoded frame times put the words of second k into the chunk whose frames show second k, lose no
//     word before the last second, and leave the last chunk silent; interior silent chunks exist;
//   - the pictures: each sampled frame shows the colour its second's words name (mean colour of the pixels
//     that stand out from the background), and silent seconds show no shape; with lcc_media (loader/media_video.c) built,
//     the same through lcc_video_read_strict, whose frame times must equal the replayed ones;
//   - the shipped tokenizer.json: a copy of configs/tokenizer/tiny's, which encodes every word used (with its
//     leading space) and LiveCC's " ..." as one token each;
//   - determinism: a second run with the same seed is byte-identical; another seed differs; bad flags fail.
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "json.h"
#include "synth.h"
#include "testlib.h"
#include "tokenizer.h"
#include "util.h"
#ifdef LCC_SYNTH_HAVE_MEDIA
#include "media.h"
#endif

// ---- running the generator --------------------------------------------------------------------------------

static const char *synth_bin;
static const char *tmp;   // $TEST_TMPDIR/synth, emptied at the start
static const char *tokenizer_src = "configs/tokenizer/tiny/tokenizer.json";   // the generator's default

static int run_synth(const char *out, const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' --output '%s/%s' %s > '%s/%s.log' 2>&1", synth_bin, tmp, out, args, tmp, out);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *dir, const char *name, size_t *n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, name);
  return lcc_read_file(path, n);
}

// ---- decoding ---------------------------------------------------------------------------------------------

typedef struct {
  int T, h, w;
  uint8_t *rgb;       // [T, h, w, 3]
  double *end;        // [T] end pts of each frame, seconds (decord's _frame_pts[:, 1])
  int exact_times;    // every frame i covers exactly [i/fps, (i+1)/fps) in the stream's ticks
  double duration;    // container duration, seconds
} video;

static int decode_video(const char *path, int fps, video *v) {
  memset(v, 0, sizeof *v);
  AVFormatContext *fmt = NULL;
  if (!CHECKF(avformat_open_input(&fmt, path, NULL, NULL) == 0, "%s: cannot open", path)) return -1;
  LCC_CHECK(avformat_find_stream_info(fmt, NULL) >= 0, "%s: no stream info", path);
  const AVCodec *dec = NULL;
  int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
  LCC_CHECK(si >= 0, "%s: no video stream", path);
  AVStream *st = fmt->streams[si];
  AVCodecContext *cc = avcodec_alloc_context3(dec);
  LCC_CHECK(cc && avcodec_parameters_to_context(cc, st->codecpar) >= 0, "codec context");
  cc->thread_count = 1;
  LCC_CHECK(avcodec_open2(cc, dec, NULL) >= 0, "%s: cannot open decoder", path);
  v->w = cc->width, v->h = cc->height, v->exact_times = 1;
  v->duration = fmt->duration / (double)AV_TIME_BASE;
  size_t frame_bytes = (size_t)v->h * v->w * 3;
  int cap = 0;
  struct SwsContext *sws = NULL;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  for (int eof = 0; !eof;) {
    if (av_read_frame(fmt, pkt) < 0) {
      eof = 1;
      LCC_CHECK(avcodec_send_packet(cc, NULL) >= 0, "flush");
    } else {
      int rc = pkt->stream_index == si ? avcodec_send_packet(cc, pkt) : 0;
      av_packet_unref(pkt);
      LCC_CHECK(rc >= 0, "%s: send packet: %s", path, av_err2str(rc));
    }
    while (avcodec_receive_frame(cc, fr) == 0) {
      if (v->T == cap) {
        cap = cap ? 2 * cap : 64;
        v->rgb = lcc_realloc(v->rgb, (size_t)cap * frame_bytes);
        v->end = lcc_realloc(v->end, (size_t)cap * sizeof *v->end);
      }
      int64_t end = fr->best_effort_timestamp + fr->pkt_duration;   // ticks of st->time_base
      v->end[v->T] = end * av_q2d(st->time_base);
      v->exact_times &= end * st->time_base.num * fps == (int64_t)(v->T + 1) * st->time_base.den;
      sws = sws_getCachedContext(sws, fr->width, fr->height, fr->format, v->w, v->h, AV_PIX_FMT_RGB24,
                                 SWS_BILINEAR, NULL, NULL, NULL);
      LCC_CHECK(sws, "swscale context");
      uint8_t *dst[4] = {v->rgb + v->T * frame_bytes};
      int ls[4] = {3 * v->w};
      sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, ls);
      v->T++;
    }
  }
  sws_freeContext(sws);
  av_frame_free(&fr);
  av_packet_free(&pkt);
  avcodec_free_context(&cc);
  avformat_close_input(&fmt);
  return 0;
}

static void video_free(video *v) {
  free(v->rgb);
  free(v->end);
}

// ---- what a frame shows -----------------------------------------------------------------------------------

// The palette colour of the pixels that stand out from the background (some channel >= 50 away from the
// frame's per-channel median, which is the background while the shape covers less than half the frame),
// or -1 when fewer than 0.5% of the pixels stand out (an empty background).
static int frame_colour(const uint8_t *rgb, int h, int w) {
  int hist[3][256] = {{0}}, med[3];
  size_t n = (size_t)h * w;
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++) hist[c][rgb[3 * i + c]]++;
  for (int c = 0; c < 3; c++) {
    size_t acc = 0;
    med[c] = 0;
    while ((acc += hist[c][med[c]]) < n / 2) med[c]++;
  }
  double sum[3] = {0};
  size_t far = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = rgb + 3 * i;
    if (abs(p[0] - med[0]) < 50 && abs(p[1] - med[1]) < 50 && abs(p[2] - med[2]) < 50) continue;
    for (int c = 0; c < 3; c++) sum[c] += p[c];
    far++;
  }
  if (far * 200 < n) return -1;
  int best = 0;
  double best_d = 1e30;
  for (int k = 0; k < LCC_SYNTH_COLOURS; k++) {
    double d = 0;
    for (int c = 0; c < 3; c++) d += pow(sum[c] / far - lcc_synth_palette[k][c], 2);
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

// ---- the words --------------------------------------------------------------------------------------------

typedef struct {
  double start, end;
  const char *word;
} word;

static int find_name(const char *const *names, int n, const char *w) {
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], w)) return i;
  return -1;
}

// Checks "[now] a [small|big] <colour> <shape> [moving left|right|up|down]" and returns the colour index,
// or -1 (with a failure recorded).
static int parse_phrase(const word *w, int n, const char *where) {
  static const char *const dirs[] = {"left", "right", "up", "down"};
  int i = 0, colour = -1;
  if (i < n && !strcmp(w[i].word, "now")) i++;
  int ok = i < n && !strcmp(w[i++].word, "a");
  if (ok && i < n && (!strcmp(w[i].word, "small") || !strcmp(w[i].word, "big"))) i++;
  ok = ok && i < n && (colour = find_name(lcc_synth_colour_names, LCC_SYNTH_COLOURS, w[i++].word)) >= 0;
  ok = ok && i < n && find_name(lcc_synth_shape_names, LCC_SYNTH_SHAPES, w[i++].word) >= 0;
  if (ok && i < n) ok = i + 2 == n && !strcmp(w[i].word, "moving") && find_name(dirs, 4, w[i + 1].word) >= 0;
  if (!CHECKF(ok && i <= n, "%s: phrase starting '%s' (%d words) is not '[now] a [size] colour shape [moving dir]'",
              where, n ? w[0].word : "", n))
    return -1;
  return colour;
}

// ---- one sample -------------------------------------------------------------------------------------------

typedef struct {
  int fps, seconds, w, h;
} spec;

typedef struct {
  int samples, chunks, silent_chunks, frames_checked;
} tally;

// LiveCC's strict 2 fps pick (LIVECC.md 3.2) on the decoded end times: indices of the picked frames.
static int pick_frames(const video *v, double start, double end, int *pick, const char *where) {
  int first = -1, last = -1;
  for (int i = 0; i < v->T; i++)
    if (start <= v->end[i] && v->end[i] <= end) last = i, first = first < 0 ? i : first;
  if (!CHECKF(first >= 0, "%s: no frame inside [%g, %g]", where, start, end)) return 0;
  double t0 = v->end[first], stop = v->end[last] + 1e-6;
  int n = (int)ceil((stop - t0) / 0.5);   // numpy.arange(t0, stop, 0.5)
  if (!CHECKF(n <= 480, "%s: %d grid points, more than LiveCC's 480", where, n)) n = 480;
  for (int j = 0; j < n; j++) {
    double t = t0 + 0.5 * j;
    int i = first;
    while (i <= last && v->end[i] < t) i++;
    if (!CHECKF(i <= last, "%s: no frame at or after %g (numpy's argmax would pick the first frame)", where, t)) i = first;
    pick[j] = i;
  }
  if (n > 0 && n % 2) pick[n] = pick[n - 1], n++;   // repeat the last frame until the count is even
  return n;
}

static void check_sample(const char *dir, const char *name, int line, const lcc_json *root, const spec *sp,
                         int pretrain, tally *tl) {
  char where[256];
  snprintf(where, sizeof where, "%s/%s sample %d", dir, name, line);
  const lcc_json *user = lcc_json_get(lcc_json_at(root, 0), "content");
  const lcc_json *vid = lcc_json_at(user, 0), *txt = lcc_json_at(user, 1);
  const lcc_json *stream = lcc_json_get(lcc_json_at(lcc_json_get(lcc_json_at(root, 1), "content"), 0), "text_stream");
  const lcc_json *path = lcc_json_get(vid, "video"), *vs = lcc_json_get(vid, "video_start"),
                 *ve = lcc_json_get(vid, "video_end"), *text = lcc_json_get(txt, "text"),
                 *prev = lcc_json_get(txt, "previous"), *title = lcc_json_get(txt, "title"),
                 *role = lcc_json_get(lcc_json_at(root, 0), "role");
  if (!CHECKF(root->type == LCC_JSON_ARRAY && root->count == 2 && path && vs && ve && text && prev && title && stream &&
                  role && !strcmp(role->str, "user") && stream->count > 0,
              "%s: not a LiveCC stream sample (user video + text, assistant text_stream)", where))
    return;
  CHECKF(pretrain ? !text->str[0] && !prev->str[0] : text->str[0] != 0,
         "%s: text '%s' / previous '%s' do not fit the %s form", where, text->str, prev->str,
         pretrain ? "Live-CC-5M" : "Live-WhisperX");

  // Words, grouped by the second they are spoken in.
  int nw = (int)stream->count;
  word *w = lcc_malloc(nw * sizeof *w);
  int ok = 1;
  for (int i = 0; i < nw; i++) {
    const lcc_json *e = lcc_json_at(stream, i);
    ok &= CHECKF(e->count == 3 && lcc_json_at(e, 2)->type == LCC_JSON_STRING, "%s: word %d is not [s, e, w]", where, i);
    if (!ok) break;
    w[i] = (word){lcc_json_at(e, 0)->number, lcc_json_at(e, 1)->number, lcc_json_at(e, 2)->str};
    int k = (int)floor(w[i].start);
    ok &= CHECKF(w[i].start < w[i].end && (i == 0 || w[i].start >= w[i - 1].end) && w[i].end > k + 0.05 &&
                     w[i].end < k + 0.95,
                 "%s: word %d '%s' [%g, %g] is not inside (%d.05, %d.95) in order", where, i, w[i].word, w[i].start,
                 w[i].end, k, k);
  }
  ok = ok && CHECKF(vs->number == w[0].start && ve->number == w[nw - 1].end,
                    "%s: window [%g, %g] is not [first word start, last word end]", where, vs->number, ve->number);
  int colour_of[256];   // per second: the colour word's index, -1 when silent
  int b = ok ? (int)floor(w[nw - 1].start) : 0;
  CHECKF(b == sp->seconds - 1, "%s: the clip ends in second %d, not the video's last", where, b);
  for (int k = 0; ok && k < sp->seconds; k++) {
    int i = 0;
    while (i < nw && (int)floor(w[i].start) < k) i++;
    int j = i;
    while (j < nw && (int)floor(w[j].start) == k) j++;
    colour_of[k] = j > i ? parse_phrase(w + i, j - i, where) : -1;
  }

  char vpath[1024];
  snprintf(vpath, sizeof vpath, "%s/%s/%s", tmp, dir, path->str);
  video v;
  if (!ok || decode_video(vpath, sp->fps, &v)) {
    free(w);
    return;
  }
  CHECKF(v.T == sp->seconds * sp->fps && v.w == sp->w && v.h == sp->h && v.exact_times &&
             fabs(v.duration - sp->seconds) < 1e-9,
         "%s: %s has %d frames of %dx%d over %g s (exact frame times: %d), expected %d of %dx%d over %d s", where,
         path->str, v.T, v.w, v.h, v.duration, v.exact_times, sp->seconds * sp->fps, sp->w, sp->h, sp->seconds);

  // Replay LiveCC: chunks of 6 and then 2 picked frames; words bucketed by end time <= the chunk's last pts.
  int pick[482];   // at most 480 grid points, plus the repeated last frame
  int n = pick_frames(&v, vs->number, ve->number, pick, where);
  int cursor = 0;
  for (int c0 = 0; ok && c0 + 1 < n; c0 += c0 == 0 ? 6 : 2) {
    int c1 = c0 == 0 ? 6 : c0 + 2;   // frames [c0, c1)
    if (!CHECKF(c1 <= n, "%s: %d picked frames do not fill the first 6-frame chunk", where, n)) break;
    int lo = pick[c0] / sp->fps, hi = pick[c1 - 1] / sp->fps;   // seconds the chunk's frames show
    CHECKF(c0 == 0 || lo == hi, "%s: chunk at frame %d shows seconds %d..%d", where, c0, lo, hi);
    double t = v.end[pick[c1 - 1]];
    int taken = 0;
    while (cursor < nw && w[cursor].end <= t) {
      int k = (int)floor(w[cursor].start);
      CHECKF(k >= lo && k <= hi, "%s: word '%s' of second %d lands in the chunk showing seconds %d..%d", where,
             w[cursor].word, k, lo, hi);
      cursor++, taken++;
    }
    CHECKF(cursor < nw, "%s: every word is taken by frame %d (LiveCC would repeat the last word)", where, c0);
    tl->chunks++;
    int last_chunk = c1 >= n;
    if (last_chunk) CHECKF(taken == 0, "%s: the last chunk takes %d words (it should be silent and trimmed)", where, taken);
    else if (c0 > 0 && taken == 0) tl->silent_chunks++;
    for (int f = c0; f < c1; f++) {   // the colour each sampled frame shows is the one its second names
      int k = pick[f] / sp->fps, got = frame_colour(v.rgb + (size_t)pick[f] * v.h * v.w * 3, v.h, v.w);
      CHECKF(got == colour_of[k], "%s: frame %d (second %d) shows %s, the words say %s", where, pick[f], k,
             got < 0 ? "nothing" : lcc_synth_colour_names[got],
             colour_of[k] < 0 ? "nothing" : lcc_synth_colour_names[colour_of[k]]);
      tl->frames_checked++;
    }
  }
  for (int i = 0; i < cursor; i++)   // every word before the last second is taken, none of the last second
    CHECKF((int)floor(w[i].start) < b, "%s: word %d of the last second was taken", where, i);
  for (int i = cursor; i < nw; i++)
    CHECKF((int)floor(w[i].start) == b, "%s: word %d '%s' of second %d was never taken", where, i, w[i].word,
           (int)floor(w[i].start));

#ifdef LCC_SYNTH_HAVE_MEDIA
  lcc_video_budget bud;
  lcc_video_budget_default(&bud);
  lcc_frames fr;
  if (CHECKF(lcc_video_read_strict(vpath, vs->number, ve->number, &bud, &fr) == 0, "%s: lcc_video_read_strict: %s",
             where, lcc_last_error())) {
    int same = fr.T == n;
    for (int j = 0; same && j < n; j++) same = fr.pts[j] == v.end[pick[j]];
    CHECKF(same, "%s: lcc_video_read_strict picked %d frames, other times than the replay's %d", where, fr.T, n);
    for (int j = 0; same && j < n; j++) {
      int k = pick[j] / sp->fps, got = frame_colour(fr.rgb + (size_t)j * fr.h * fr.w * 3, fr.h, fr.w);
      CHECKF(got == colour_of[k], "%s: lcc_video_read_strict frame %d (second %d) shows colour %d, the words say %d",
             where, j, k, got, colour_of[k]);
    }
    lcc_frames_free(&fr);
  }
#endif
  tl->samples++;
  video_free(&v);
  free(w);
}

// ---- one JSONL file ---------------------------------------------------------------------------------------

static void check_jsonl(const char *dir, const char *name, const spec *sp, int expect_samples, tally *tl) {
  int before = test_failures;
  size_t len;
  char *data = slurp(dir, name, &len);
  if (!CHECKF(data != NULL, "%s/%s: %s", dir, name, lcc_last_error())) return;
  int ascii = 1;
  for (size_t i = 0; i < len; i++) ascii &= (unsigned char)data[i] < 128 && data[i] != 0;
  CHECKF(ascii, "%s/%s: not pure ASCII", dir, name);
  char *index_line = len ? memrchr(data, '\n', len) : NULL;
  if (!CHECKF(index_line && index_line + 1 < data + len, "%s/%s: no seek-index last line (or a trailing newline)",
              dir, name)) {
    free(data);
    return;
  }
  index_line++;
  lcc_json_doc *idx = lcc_json_parse(index_line, (size_t)(data + len - index_line), name);
  const lcc_json *seeks = idx ? lcc_json_root(idx) : NULL;
  int n = 0;   // sample lines: every line before the index line
  for (char *p = data; p < index_line; p++) n += *p == '\n';
  if (CHECKF(seeks && seeks->type == LCC_JSON_ARRAY && (int)seeks->count == n && n == expect_samples,
             "%s/%s: seek index has %d entries for %d lines (expected %d samples)", dir, name,
             seeks ? (int)seeks->count : -1, n, expect_samples)) {
    size_t at = 0;
    for (int i = 0; i < n; i++) {   // entry i is the offset of line i
      const lcc_json *s = lcc_json_at(seeks, i);
      CHECKF(s->is_integer && (size_t)s->integer == at, "%s/%s: seek %d is %g, line starts at %zu", dir, name, i,
             s->number, at);
      char *nl = memchr(data + at, '\n', (size_t)(index_line - data) - at);
      lcc_json_doc *doc = lcc_json_parse(data + at, (size_t)(nl - data) - at, name);
      if (CHECKF(doc != NULL, "%s/%s line %d: %s", dir, name, i, lcc_last_error())) {
        check_sample(dir, name, i, lcc_json_root(doc), sp, !strcmp(name, "pretrain.jsonl"), tl);
        lcc_json_free(doc);
      }
      at = (size_t)(nl - data) + 1;
    }
  }
  lcc_json_free(idx);
  free(data);
  char what[256];
  snprintf(what, sizeof what, "%s/%s: %d samples, seek index, words, videos, alignment, colours", dir, name, n);
  check(test_failures == before, what);
}

// Every word the generator says, with its leading space, and LiveCC's " ..." are single tokens.
static void check_tokens(const char *dir) {
  static const char *const fillers[] = {"now", "a", "small", "big", "moving", "left", "right", "up", "down"};
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/tokenizer.json", tmp, dir);
  lcc_tokenizer *tk = lcc_tokenizer_load(path);
  if (!CHECKF(tk != NULL, "%s", lcc_last_error())) return;
  lcc_tok_scratch *scratch = lcc_tok_scratch_new();
  for (int i = 0; i < LCC_SYNTH_COLOURS + LCC_SYNTH_SHAPES + 9 + 1; i++) {
    const char *w = i < LCC_SYNTH_COLOURS ? lcc_synth_colour_names[i]
                    : i < LCC_SYNTH_COLOURS + LCC_SYNTH_SHAPES ? lcc_synth_shape_names[i - LCC_SYNTH_COLOURS]
                    : i < LCC_SYNTH_COLOURS + LCC_SYNTH_SHAPES + 9 ? fillers[i - LCC_SYNTH_COLOURS - LCC_SYNTH_SHAPES]
                                                                   : "...";
    char text[32];
    snprintf(text, sizeof text, " %s", w);
    lcc_ids ids = {0};
    CHECKF(lcc_tokenizer_encode(tk, scratch, text, strlen(text), &ids) == 0 && ids.n == 1,
           "%s/tokenizer.json encodes '%s' as %d tokens", dir, text, ids.n);
    lcc_ids_free(&ids);
  }
  lcc_tok_scratch_free(scratch);
  lcc_tokenizer_free(tk);
}

static void check_dataset(const char *dir, const spec *sp, int videos, int heldout) {
  tally tl = {0};
  check_jsonl(dir, "pretrain.jsonl", sp, videos, &tl);
  check_jsonl(dir, "sft.jsonl", sp, videos, &tl);
  check_jsonl(dir, "heldout.jsonl", sp, heldout, &tl);
  int before = test_failures;
  CHECKF(tl.silent_chunks > 0, "%s: no interior silent chunk in %d chunks", dir, tl.chunks);
  size_t n, n_src;
  char *readme = slurp(dir, "README.txt", &n), *tok = slurp(dir, "tokenizer.json", &n);
  char *src = lcc_read_file(tokenizer_src, &n_src);
  CHECKF(readme != NULL, "%s: no README.txt", dir);
  CHECKF(tok && src && n == n_src && !memcmp(tok, src, n), "%s/tokenizer.json is not a copy of %s", dir, tokenizer_src);
  free(readme);
  free(tok);
  free(src);
  check_tokens(dir);
  printf("     %s: %d samples, %d chunks (%d interior silent), %d sampled frames checked%s\n", dir, tl.samples,
         tl.chunks, tl.silent_chunks, tl.frames_checked,
#ifdef LCC_SYNTH_HAVE_MEDIA
         " (and through lcc_video_read_strict)"
#else
         ""
#endif
  );
  check(test_failures == before, "silent seconds present, README.txt, tokenizer.json copied: every word one token");
}

// Byte-compares every file of two output directories.
static void compare_dirs(const char *a, const char *b, int videos, int want_same) {
  int same = 1;
  const char *names[] = {"pretrain.jsonl", "sft.jsonl", "heldout.jsonl", "README.txt", "tokenizer.json"};
  for (int i = 0; i < 5 + videos; i++) {
    char name[64];
    if (i < 5) snprintf(name, sizeof name, "%s", names[i]);
    else snprintf(name, sizeof name, "videos/vid-%04d.mp4", i - 5);
    size_t na, nb;
    char *x = slurp(a, name, &na), *y = slurp(b, name, &nb);
    LCC_CHECK(x && y, "%s", lcc_last_error());
    int eq = na == nb && !memcmp(x, y, na);
    if (want_same) CHECKF(eq, "%s differs between %s and %s", name, a, b);
    same &= eq;
    free(x);
    free(y);
  }
  if (!want_same) CHECKF(!same, "%s and %s are identical although their seeds differ", a, b);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_synth PATH/livecc-synth\n");
    return 2;
  }
  synth_bin = argv[1];
  tmp = test_fresh_dir("synth");

  // The default settings (112x112, 8 fps, libx264 when present), more silence than the default so that the
  // few short videos surely have interior silent seconds.
  const char *args = "--videos 3 --heldout 2 --seconds 8 --seed 11 --silence=0.3";
  int before = test_failures;
  CHECKF(run_synth("first", args) == 0, "livecc-synth %s failed (see %s/first.log)", args, tmp);
  LCC_CHECK(rename(path_in(tmp, "first"), path_in(tmp, "kept")) == 0, "rename %s/first", tmp);
  CHECKF(run_synth("first", args) == 0, "second run of livecc-synth %s failed", args);
  compare_dirs("kept", "first", 5, 1);
  CHECKF(run_synth("other", "--videos 3 --heldout 2 --seconds 8 --seed 12 --silence=0.3") == 0, "seed 12 failed");
  compare_dirs("kept", "other", 5, 0);
  check(test_failures == before, "same seed: byte-identical JSONL, README and videos; another seed: different files");
  spec sp = {8, 8, 112, 112};
  check_dataset("first", &sp, 3, 2);

  // Another frame rate, a non-square size and the mpeg4 fallback encoder, through a config file.
  const char *conf = path_in(tmp, "alt.conf");
  write_text(conf, "# a run config\nfps = 16\nwidth = 128\nheight = 96\ncodec = mpeg4\nsilence = 0.3\n");
  char alt[1300];
  snprintf(alt, sizeof alt, "--config '%s' --videos=2 --heldout=1 --seconds=6 --seed=5", conf);
  CHECKF(run_synth("alt", alt) == 0, "livecc-synth %s failed (see %s/alt.log)", alt, tmp);
  spec sp2 = {16, 6, 128, 96};
  check_dataset("alt", &sp2, 2, 1);

  // Bad settings fail with one clear message and exit code 2.
  before = test_failures;
  struct { const char *args, *must; } bad[] = {
      {"--seconds 3", "'seconds' must be 4..240"},
      {"--fps 10", "'fps' must be 2, 4, 8, 16 or 32"},
      {"--videoz 3", "did you mean 'videos'"},
      {"--codec vp9", "codec 'vp9'"},
      {"--tokenizer /nonexistent/tokenizer.json", "key 'tokenizer'"},
  };
  for (int i = 0; i < 5; i++) {
    int rc = run_synth("bad", bad[i].args);
    size_t n;
    char *log = lcc_read_file(path_in(tmp, "bad.log"), &n);
    CHECKF(rc != 0 && log && strstr(log, bad[i].must), "livecc-synth %s: exit %d, log lacks \"%s\"", bad[i].args, rc,
           bad[i].must);
    free(log);
  }
  check(test_failures == before, "bad flags: non-zero exit and a message naming the key");

  return test_finish("test_synth");
}
