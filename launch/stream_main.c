// livecc-stream: real-time commentary on a video with the KV cache (LIVECC.md 8), and a check of the
// commentary against held-out transcripts.
//   livecc-stream --init=CHECKPOINT --tokenizer=DIR --video=FILE [--start=s --end=s] [--key=value ...]
//   livecc-stream --init=CHECKPOINT --tokenizer=DIR --check=heldout.jsonl [--max_samples=N]
// One line per chunk (the first covers 3 s, every later one 1 s): its times, its latency and what the model
// said, then latency and throughput figures and whether the model keeps up with real time. The video is
// processed as fast as it can be; --realtime waits for the wall clock to reach each chunk's end.
// Check mode streams each sample's clip with its query and compares, second by second, the generated words
// with the transcript's words bucketed as LiveCC does (words whose end time is at or before the last frame
// of the second; the first chunk's three seconds are scored by aligning its words to the transcript's).
// Trailing chunks without words are not scored: LiveCC trims them from its training
// samples (LIVECC.md 3.4), because a clip ends at its last word's end, so their frames show a second whose
// words the bucketing can no longer reach.
#include <libavutil/log.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jsonl.h"
#include "backend_open.h"
#include "runconfig.h"
#include "sample.h"
#include "stream.h"
#include "util.h"

typedef struct {
  char model[LCC_OPT_STR], init[LCC_OPT_STR], tokenizer[LCC_OPT_STR], video[LCC_OPT_STR], query[LCC_OPT_STR];
  char system_prompt[LCC_OPT_STR], positions[LCC_OPT_STR], check[LCC_OPT_STR];
  double start, end, fps, repetition_penalty, evict_after;
  int max_frames, min_pixels, max_pixels, total_pixels;
  int max_new_tokens, no_cache, realtime, threads, max_samples, fix_last_word, quiet;
  char backend[LCC_OPT_STR];
} stream_opts;

#define OPT(key, type, field, def, help) {key, type, offsetof(stream_opts, field), def, help}
static const lcc_opt table[] = {
    OPT("model", LCC_OPT_STRING, model, "configs/model/tiny.json", "model architecture: HF folder or config.json"),
    OPT("init", LCC_OPT_STRING, init, "", "weights: a run's checkpoints directory (its latest), a checkpoint, or an HF folder"),
    OPT("tokenizer", LCC_OPT_STRING, tokenizer, "", "tokenizer.json or its directory"),
    OPT("video", LCC_OPT_STRING, video, "", "video file to comment on"),
    OPT("start", LCC_OPT_FLOAT, start, "0", "window start, seconds of the video"),
    OPT("end", LCC_OPT_FLOAT, end, "-1", "window end, seconds (-1: the end of the video)"),
    OPT("query", LCC_OPT_STRING, query, "Please describe the video.", "the user's request, after the first chunk's frames"),
    OPT("system_prompt", LCC_OPT_STRING, system_prompt, "You are a helpful assistant.", "system turn of the first chunk (empty: none)"),
    OPT("fps", LCC_OPT_FLOAT, fps, "2", "frames per second sampled (an even whole number)"),
    OPT("max_frames", LCC_OPT_INT, max_frames, "0", "frames of the window at most (0: no limit)"),
    OPT("min_pixels", LCC_OPT_INT, min_pixels, "78400", "pixels per frame at least (100*28*28; the demo model: 3136)"),
    OPT("max_pixels", LCC_OPT_INT, max_pixels, "301056", "pixels per frame at most (384*28*28, LiveCC's demo)"),
    OPT("total_pixels", LCC_OPT_INT, total_pixels, "0", "pixels of the whole window at most (0: no clip budget)"),
    OPT("max_new_tokens", LCC_OPT_INT, max_new_tokens, "16", "tokens generated per chunk at most"),
    OPT("repetition_penalty", LCC_OPT_FLOAT, repetition_penalty, "1.15", "HF repetition penalty over the context (1: off)"),
    OPT("evict_after", LCC_OPT_FLOAT, evict_after, "0", "seconds after which a chunk's visual tokens leave the cache (0: never; paper: 240)"),
    OPT("no_cache", LCC_OPT_BOOL, no_cache, "false", "baseline: run the whole context again every second"),
    OPT("realtime", LCC_OPT_BOOL, realtime, "false", "wait for the wall clock to reach each chunk's end"),
    OPT("positions", LCC_OPT_STRING, positions, "mrope", "mrope or 1d (as the model was trained)"),
    OPT("backend", LCC_OPT_STRING, backend, "cpu", "cpu, cpu-bf16 or cuda (bf16 on this process's GPU)"),
    OPT("threads", LCC_OPT_INT, threads, "0", "CPU threads (0: OpenMP default)"),
    OPT("check", LCC_OPT_STRING, check, "", "LiveCC JSONL: stream every sample's clip and score the words per second"),
    OPT("max_samples", LCC_OPT_INT, max_samples, "0", "check at most this many samples (0: all)"),
    OPT("fix_last_word", LCC_OPT_BOOL, fix_last_word, "true",
        "check: every transcript word once (false: LiveCC's cursor, which says the last word again after the words run out)"),
    OPT("quiet", LCC_OPT_BOOL, quiet, "false", "no line per chunk (check mode prints only the mismatches)"),
};
static const int n_table = sizeof table / sizeof table[0];

// Latency and throughput over every chunk streamed.
typedef struct {
  int n, cap;
  double *latency;          // [n] seconds per chunk
  double video_s, busy_s, decode_media_s;
  long prefill_tokens, gen_tokens;
  double prefill_s, gen_s;
} tally;

static void tally_add(tally *t, const lcc_stream_result *r) {
  for (int k = 0; k < r->n; k++) {
    const lcc_stream_chunk *c = &r->chunks[k];
    if (t->n == t->cap) {
      t->cap = t->cap ? 2 * t->cap : 256;
      t->latency = lcc_realloc(t->latency, (size_t)t->cap * sizeof(double));
    }
    t->latency[t->n++] = c->latency_s;
    t->video_s += c->t1 - c->t0;
    t->prefill_tokens += c->prefill_tokens, t->prefill_s += c->prefill_s;
    t->gen_tokens += c->n_ids, t->gen_s += c->decode_s;
  }
  t->busy_s += r->wall_s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void print_summary(tally *t, int no_cache) {
  if (!t->n) return;
  qsort(t->latency, (size_t)t->n, sizeof(double), cmp_double);
  double sum = 0;
  for (int i = 0; i < t->n; i++) sum += t->latency[i];
  const double p50 = t->latency[(t->n - 1) / 2], p90 = t->latency[(int)(0.9 * (t->n - 1) + 0.5)], max = t->latency[t->n - 1];
  const double rtf = (t->busy_s + t->decode_media_s) / t->video_s;
  printf("%s: %d chunks, %.1f s of video | latency per chunk: mean %.1f ms, p50 %.1f ms, p90 %.1f ms, max %.1f ms\n",
         no_cache ? "without KV cache (whole context every second)" : "with KV cache", t->n, t->video_s,
         1e3 * sum / t->n, 1e3 * p50, 1e3 * p90, 1e3 * max);
  printf("prompt: %ld tokens, %.0f tokens/s | generated: %ld tokens, %.1f tokens/s\n", t->prefill_tokens,
         t->prefill_tokens / (t->prefill_s > 0 ? t->prefill_s : 1e-9), t->gen_tokens, t->gen_tokens / (t->gen_s > 0 ? t->gen_s : 1e-9));
  printf("real-time factor %.3f (processing %.2f s + video decoding %.2f s for %.1f s of video) | keeps up with real "
         "time: %s (slowest chunk %.1f ms; each second must take under 1 s)\n", rtf, t->busy_s, t->decode_media_s,
         t->video_s, max < 1.0 && rtf < 1.0 ? "yes" : "no", 1e3 * max);
}

static void print_chunk(void *ctx, const lcc_stream_chunk *c) {
  const double *offset = ctx;
  char words[4096];
  lcc_stream_words(c->text, words, sizeof words);
  if (c->evicted_tokens) printf("# evicted %d visual tokens of seconds older than --evict_after\n", c->evicted_tokens);
  printf("%7.1f-%-7.1f s | %8.2f ms | %s\n", *offset + c->t0, *offset + c->t1, 1e3 * c->latency_s, words);
  fflush(stdout);
}

static int stream_video(lcc_streamer *s, const stream_opts *o, const lcc_video_budget *b, tally *t) {
  lcc_frames clip;
  double t0 = lcc_now();
  if (lcc_video_read_strict(o->video, o->start, o->end, b, &clip)) return -1;
  t->decode_media_s = lcc_now() - t0;
  double offset = o->start;   // print times of the video, not of the window
  if (o->end > 0 && clip.pts[clip.T - 1] + 1.0 / o->fps < o->end)
    fprintf(stderr, "livecc-stream: note: the last frame sampled from %s ends at %.2f s, before the window's end %.2f s: "
            "the video is shorter than the window\n", o->video, clip.pts[clip.T - 1], o->end);
  printf("# %s: %d frames of %dx%d at %g fps from %.3f s (decoded in %.2f s)\n", o->video, clip.T, clip.w, clip.h,
         o->fps, clip.pts[0], t->decode_media_s);
  s->o.on_chunk = o->quiet ? NULL : print_chunk;
  s->o.ctx = &offset;
  lcc_stream_result r;
  int rc = lcc_stream_clip(s, &clip, o->query, &r);
  if (rc) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    lcc_error("%s: %s", o->video, msg);
  } else {
    tally_add(t, &r);
  }
  lcc_stream_result_free(&r);
  lcc_frames_free(&clip);
  return rc;
}

// ---- check mode ----

static void media_path(const char *jsonl, const lcc_elem *e, char *out, size_t cap) {
  const char *slash = strrchr(jsonl, '/');
  if (e->text[0] == '/' || !slash) lcc_pathf(out, cap, "%s", e->text);
  else lcc_pathf(out, cap, "%.*s/%s", (int)(slash - jsonl), jsonl, e->text);
}

typedef struct {
  long right, scored, unscored;     // chunks
  long first_right, first_scored;   // of them, first chunks (3 s each)
  long sec_right, sec_scored;       // seconds: a 1-s chunk is one, the first chunk three
} score;

// Streams one sample and scores its chunks; mismatches are printed.
static int check_sample(lcc_streamer *s, const stream_opts *o, const lcc_video_budget *b, const lcc_conv *c,
                        const char *what, const char *jsonl, tally *t, score *sc) {
  const lcc_elem *v = &c->elems[c->turns[0].first], *q = c->turns[0].n > 1 ? &c->elems[c->turns[0].first + 1] : NULL;
  char path[4096];
  media_path(jsonl, v, path, sizeof path);
  lcc_frames clip;
  double t0 = lcc_now();
  if (lcc_video_read_strict(path, v->start, v->end, b, &clip)) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    return lcc_error("%s: %s", what, msg);
  }
  t->decode_media_s += lcc_now() - t0;
  char *query = q && q->kind == LCC_ELEM_TEXT ? lcc_strdup(q->text) : lcc_strdup("");
  lcc_stream_result r;
  int rc = lcc_stream_clip(s, &clip, query, &r);
  if (rc) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    rc = lcc_error("%s: %s", what, msg);
  }
  // reference words per chunk, and the last chunk that has any; per second for the 3-s first chunk (its
  // seconds end with frames 1, 3 and 5)
  lcc_str *ref = lcc_calloc((size_t)(r.n ? r.n : 1), sizeof(lcc_str)), first_sec[3] = {{0}};
  int cursor = 0, last = -1, sec_cursor = 0;
  for (int sec = 0; sec < 3 && !rc && clip.T >= 6; sec++)
    lcc_bucket_words(c->words, c->n_words, clip.pts[2 * sec + 1], &sec_cursor, o->fix_last_word, &first_sec[sec]);
  for (int k = 0; k < r.n && !rc; k++) {
    lcc_bucket_words(c->words, c->n_words, r.chunks[k].pts, &cursor, o->fix_last_word, &ref[k]);
    if (ref[k].n) last = k;
  }
  const char *sec_ref[3] = {first_sec[0].s, first_sec[1].s, first_sec[2].s};
  for (int k = 0; k < r.n && !rc; k++) {
    char got[4096];
    lcc_stream_words(r.chunks[k].text, got, sizeof got);
    const char *want = ref[k].s ? ref[k].s : "";
    if (k > last) {
      sc->unscored++;
      continue;
    }
    int ok = !strcmp(got, want);
    sc->right += ok, sc->scored++;
    if (k == 0) sc->first_right += ok, sc->first_scored++;
    sc->sec_right += k == 0 ? lcc_stream_seconds_right(got, sec_ref) : ok;
    sc->sec_scored += k == 0 ? 3 : 1;
    if (!ok) printf("%s %.1f-%.1f s: said \"%s\", transcript \"%s\"\n", what, r.chunks[k].t0, r.chunks[k].t1, got, want);
  }
  if (!rc) tally_add(t, &r);
  for (int k = 0; k < r.n; k++) free(ref[k].s);
  for (int sec = 0; sec < 3; sec++) free(first_sec[sec].s);
  free(ref), free(query);
  lcc_stream_result_free(&r);
  lcc_frames_free(&clip);
  return rc;
}

static int run_check(lcc_streamer *s, const stream_opts *o, const lcc_video_budget *b, tally *t) {
  lcc_jsonl jl;
  const char *paths[1] = {o->check};
  if (lcc_jsonl_open(&jl, paths, 1, NULL)) return -1;
  lcc_jsonl_line line = {0};
  score sc = {0};
  int rc = 0;
  const int64_t n = o->max_samples > 0 && o->max_samples < jl.n ? o->max_samples : jl.n;
  for (int64_t g = 0; g < n && !rc; g++) {
    if ((rc = lcc_jsonl_read(&jl, g, &line))) break;
    char what[4200];
    snprintf(what, sizeof what, "%s:%lld", line.path, (long long)line.line);
    lcc_conv c;
    int json_error;
    if ((rc = lcc_conv_parse(line.text, line.len, what, &c, &json_error))) break;
    if (!c.stream) rc = lcc_error("%s: not a streaming sample (no text_stream)", what);
    if (!rc) lcc_conv_drop_words_outside(&c);
    if (!rc) rc = check_sample(s, o, b, &c, what, o->check, t, &sc);
    lcc_conv_free(&c);
  }
  lcc_jsonl_line_free(&line);
  lcc_jsonl_close(&jl);
  if (rc) return -1;
  printf("seconds named right: %.1f%% (%ld of %ld seconds of %lld samples; the first chunk's 3 seconds scored by "
         "aligning its words; %ld trailing chunks without transcript words not scored)\n",
         100.0 * sc.sec_right / (sc.sec_scored ? sc.sec_scored : 1), sc.sec_right, sc.sec_scored, (long long)n, sc.unscored);
  printf("chunks named right: %.1f%% | first chunks (3 s): %ld of %ld right | later chunks (1 s): %ld of %ld right\n",
         100.0 * sc.right / (sc.scored ? sc.scored : 1), sc.first_right, sc.first_scored, sc.right - sc.first_right,
         sc.scored - sc.first_scored);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: livecc-stream --init=WEIGHTS --tokenizer=DIR (--video=FILE | --check=FILE.jsonl) [--key=value ...]\n");
      lcc_opts_usage(table, n_table, stdout);
      return 0;
    }
  stream_opts o;
  if (lcc_opts_parse_argv(&o, table, n_table, argc, argv)) {
    fprintf(stderr, "livecc-stream: error: %s\n", lcc_last_error());
    return 2;
  }
  int rc = 0;
  if (!o.video[0] == !o.check[0]) rc = lcc_error("give one of --video=FILE or --check=FILE.jsonl");
  else if (!o.tokenizer[0]) rc = lcc_error("--tokenizer is required (tokenizer.json or its directory)");
  else if (strcmp(o.positions, "mrope") && strcmp(o.positions, "1d")) rc = lcc_error("positions must be mrope or 1d, got '%s'", o.positions);
  if (rc) {
    fprintf(stderr, "livecc-stream: error: %s\n", lcc_last_error());
    return 2;
  }
  av_log_set_level(AV_LOG_FATAL);   // the readers report failures themselves, once
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  b.fps = o.fps, b.min_pixels = o.min_pixels, b.max_pixels = o.max_pixels;
  b.max_frames = o.max_frames > 0 ? o.max_frames : INT_MAX / 2;
  b.total_pixels = o.total_pixels > 0 ? o.total_pixels : LONG_MAX / 4;
  lcc_stream_opts so;
  lcc_stream_opts_default(&so);
  so.fps = o.fps, so.system_prompt = o.system_prompt, so.max_new_tokens = o.max_new_tokens;
  so.repetition_penalty = o.repetition_penalty, so.evict_after = o.evict_after, so.no_cache = o.no_cache;
  so.realtime = o.realtime;

  lcc_backend *be = lcc_open_backend(o.backend, o.threads);
  if (!be) {
    fprintf(stderr, "livecc-stream: error: %s\n", lcc_last_error());
    return 2;
  }
  lcc_config cfg;
  lcc_model m = {0};
  lcc_tokenizer *tk = NULL;
  lcc_streamer s = {0};
  char weights[4200];
  tally t = {0};
  rc = lcc_resolve_weights(o.init, weights, sizeof weights) || lcc_config_load(&cfg, o.model) ||
       lcc_model_create(&m, &cfg, be, "") || lcc_model_load_hf(&m, weights);
  if (!rc && !(tk = lcc_tokenizer_load(o.tokenizer))) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", lcc_last_error());
    rc = lcc_error("tokenizer: %s", msg);
  }
  if (!rc) {
    m.pos_mode = strcmp(o.positions, "1d") ? LCC_POS_MROPE : LCC_POS_1D;
    printf("# livecc-stream: %s | max_new_tokens %d, repetition_penalty %g, greedy%s%s\n", weights, o.max_new_tokens,
           o.repetition_penalty, o.no_cache ? ", no KV cache" : ", KV cache", o.realtime ? ", real-time pacing" : "");
    rc = lcc_streamer_init(&s, &m, tk, &so);
    b.factor = cfg.patch_size * cfg.spatial_merge_size;   // frames resized to whole merge windows of this model
  }
  if (!rc) rc = o.check[0] ? run_check(&s, &o, &b, &t) : stream_video(&s, &o, &b, &t);
  if (!rc) print_summary(&t, o.no_cache);
  else fprintf(stderr, "livecc-stream: error: %s\n", lcc_last_error());
  free(t.latency);
  lcc_streamer_free(&s);
  if (tk) lcc_tokenizer_free(tk);
  if (m.params) lcc_model_destroy(&m);
  be->destroy(be);
  return rc ? 1 : 0;
}
