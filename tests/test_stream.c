// The streaming loop (launch/stream.c) on a real FFmpeg-encoded video with the tiny model (tests/fixtures/
// tiny_b) and the tiny tokenizer:
//   1. the prompt of the first and of a later chunk, token by token, against the sequence written out here;
//   2. with the KV cache, the generated tokens equal those of the baseline that runs the whole context
//      again every second, token for token, over several seconds;
//   3. evicting old visual tokens keeps generation going and shrinks the context by exactly those tokens;
//   4. on the cpu-bf16 backend too, the cache gives the tokens of the baseline.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_testlib.h"
#include "stream.h"
#include "util.h"

// The tiny tokenizer's ids (configs/tokenizer/tiny): special tokens, then the text pieces used below.
enum { IM_START = 1001, IM_END = 1002, V_START = 1009, V_END = 1010, V_PAD = 1013, NL = 198 };
static const int32_t SYSTEM_TURN[] = {IM_START, 361 /*system*/, NL, 353 /*You*/, 325 /* are*/, 266 /* a*/,
                                      360 /* helpful*/, 357 /* assistant*/, 13 /*.*/, IM_END, NL};
static const int32_t USER[] = {IM_START, 310 /*user*/, NL};
static const int32_t TIME_0_3[] = {363 /*Time*/, 28 /*=*/, 15, 13, 15, 12, 18, 13, 15, 82};   // "0.0-3.0s" digit by digit
static const int32_t TIME_4_5[] = {363, 28, 19, 13, 15, 12, 20, 13, 15, 82};                  // "Time=4.0-5.0s"
static const int32_t QUERY[] = {483 /*Please*/, 281 /* d*/, 394 /*es*/, 467 /*cr*/, 468 /*ibe*/, 282 /* the*/,
                                415 /* video*/, 13};
static const int32_t GEN_PROMPT[] = {IM_END, NL, IM_START, 309 /*assistant*/, NL};

typedef struct {
  int32_t ids[256];
  int n;
} seq;

static void put(seq *q, const int32_t *ids, int n) {
  memcpy(q->ids + q->n, ids, (size_t)n * sizeof(int32_t));
  q->n += n;
}

static void put_video(seq *q, int pads) {
  q->ids[q->n++] = V_START;
  for (int i = 0; i < pads; i++) q->ids[q->n++] = V_PAD;
  q->ids[q->n++] = V_END;
}

static int same_ids(const lcc_ids *got, const seq *want, const char *what) {
  int ok = got->n == want->n && !memcmp(got->ids, want->ids, (size_t)want->n * sizeof(int32_t));
  if (!ok) {
    fprintf(stderr, "%s: %d tokens, expected %d\n  got :", what, got->n, want->n);
    for (int i = 0; i < got->n; i++) fprintf(stderr, " %d", got->ids[i]);
    fprintf(stderr, "\n  want:");
    for (int i = 0; i < want->n; i++) fprintf(stderr, " %d", want->ids[i]);
    fprintf(stderr, "\n");
  }
  return ok;
}

static void test_prompts(lcc_streamer *s, const lcc_frames *clip) {
  // 56x56 frames: a 4x4 patch grid, 2x2 merged into 4 tokens per temporal patch (2 frames)
  seq first = {0}, later = {0};
  put(&first, SYSTEM_TURN, 11);
  put(&first, USER, 3);
  put(&first, TIME_0_3, 10);
  put_video(&first, 3 * 4);   // grid_t 3
  put(&first, QUERY, 8);
  put(&first, GEN_PROMPT, 5);
  CHECK(lcc_stream_prompt(s, 0, clip, 0, 6, 0.0, 3.0, "Please describe the video.") == 0);
  CHECK(same_ids(&s->prompt, &first, "first chunk"));
  CHECK(s->prompt_item.kind == LCC_VIDEO && s->prompt_item.t == 3 && s->prompt_item.h == 4 && s->prompt_item.w == 4);
  CHECK(s->prompt.ids[s->prompt_pad] == V_PAD && s->prompt.ids[s->prompt_pad - 1] == V_START);

  // the third chunk (4-5 s): the previous answer closed by "<|im_end|>\n", no system turn, no query
  later.ids[later.n++] = IM_END, later.ids[later.n++] = NL;
  put(&later, USER, 3);
  put(&later, TIME_4_5, 10);
  put_video(&later, 4);       // grid_t 1
  put(&later, GEN_PROMPT, 5);
  CHECK(lcc_stream_prompt(s, 2, clip, 8, 2, 4.0, 5.0, "Please describe the video.") == 0);
  CHECK(same_ids(&s->prompt, &later, "third chunk"));
  CHECK(s->prompt_item.t == 1 && s->prompt_item.h == 4 && s->prompt_item.w == 4 && s->prompt_pad == 2 + 3 + 10 + 1);
}

// Streams the clip; *capacity: the context's size in tokens.
static int run(lcc_model *m, const lcc_tokenizer *tk, const lcc_frames *clip, int no_cache, double evict_after,
               lcc_stream_result *r, int *capacity) {
  lcc_stream_opts o;
  lcc_stream_opts_default(&o);
  o.no_cache = no_cache, o.evict_after = evict_after;
  lcc_streamer s;
  int rc = lcc_streamer_init(&s, m, tk, &o) || lcc_stream_clip(&s, clip, "Please describe the video.", r);
  if (rc) fprintf(stderr, "stream: %s\n", lcc_last_error());
  *capacity = s.ctx.cap;
  lcc_streamer_free(&s);
  return rc;
}

// The first chunk's per-second score: words aligned to the transcript, each mistake charged to one second.
static void test_seconds_scoring(void) {
  const char *full[3] = {"now a red circle", "a red circle", "a blue square"};
  CHECK(lcc_stream_seconds_right("now a red circle a red circle a blue square", full) == 3);
  CHECK(lcc_stream_seconds_right("now a red circle a red square a blue square", full) == 2);    // a wrong word
  CHECK(lcc_stream_seconds_right("a red circle a red circle a blue square", full) == 2);        // one missing
  CHECK(lcc_stream_seconds_right("now a red circle a red circle a blue square square", full) == 2);   // one extra
  CHECK(lcc_stream_seconds_right("now a red circle a blue square", full) == 2);                 // a second skipped
  CHECK(lcc_stream_seconds_right("", full) == 0);
  const char *gap[3] = {"a red circle", NULL, "a blue square"};
  CHECK(lcc_stream_seconds_right("a red circle a blue square", gap) == 3);
  CHECK(lcc_stream_seconds_right("a red circle now a blue square", gap) == 2);   // "now" is charged to second 2
  const char *silent[3] = {NULL, NULL, NULL};
  CHECK(lcc_stream_seconds_right("", silent) == 3);
  CHECK(lcc_stream_seconds_right("a red circle", silent) == 2);
}

int main(void) {
  test_tmpdir_init();
  test_seconds_scoring();
  const char *video = tmp_path("clip.mp4");
  write_test_video(video, 56, 56, 8, 8 * 8, 2);   // 8 s at 8 fps -> 16 frames at 2 fps -> 6 chunks
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  b.min_pixels = 3136;
  lcc_frames clip;
  LCC_CHECK(lcc_video_read_strict(video, 0, -1, &b, &clip) == 0, "%s", lcc_last_error());
  CHECK(clip.T == 16 && clip.h == 56 && clip.w == 56);

  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "tests/fixtures/tiny_b") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, "tests/fixtures/tiny_b") == 0, "%s", lcc_last_error());
  lcc_tokenizer *tk = lcc_tokenizer_load("configs/tokenizer/tiny");
  LCC_CHECK(tk, "%s", lcc_last_error());

  lcc_stream_opts o;
  lcc_stream_opts_default(&o);
  lcc_streamer s;
  LCC_CHECK(lcc_streamer_init(&s, &m, tk, &o) == 0, "%s", lcc_last_error());
  test_prompts(&s, &clip);
  lcc_streamer_free(&s);

  // 2. cache vs no cache
  lcc_stream_result a, c;
  int cap_a, cap_c, cap_e;
  CHECK(run(&m, tk, &clip, 0, 0, &a, &cap_a) == 0 && run(&m, tk, &clip, 1, 0, &c, &cap_c) == 0);
  CHECK(a.n == 6 && c.n == 6);
  int same = a.n == c.n, tokens = 0;
  for (int k = 0; k < a.n && same; k++) {
    same &= a.chunks[k].n_ids == c.chunks[k].n_ids &&
            !memcmp(a.chunks[k].ids, c.chunks[k].ids, (size_t)a.chunks[k].n_ids * sizeof(int32_t));
    tokens += a.chunks[k].n_ids;
    CHECK(a.chunks[k].prefill_tokens == a.chunks[k].prompt_tokens);   // only the new chunk runs
  }
  CHECK(same);
  CHECK(tokens >= 6);
  CHECK(c.chunks[5].prefill_tokens > c.chunks[5].prompt_tokens + c.chunks[0].prompt_tokens);   // the whole context
  printf("%s: cache == no cache over %d chunks, %d generated tokens (last chunk: %d context tokens)\n",
         same ? "ok" : "FAIL", a.n, tokens, a.chunks[a.n - 1].context_tokens);

  // 3. eviction: chunks ending 2 s or more before the current one lose their visual tokens
  lcc_stream_result e;
  CHECK(run(&m, tk, &clip, 0, 2.0, &e, &cap_e) == 0 && e.n == 6);
  int evicted = 0, spoke = 1;
  for (int k = 0; k < e.n; k++) evicted += e.chunks[k].evicted_tokens, spoke &= e.chunks[k].n_ids > 0;
  // chunk ends 3,4,5,6,7,8 s: at 5 s the first chunk (12 pads) goes, then one 4-pad chunk each second
  CHECK(e.chunks[0].evicted_tokens == 0 && e.chunks[1].evicted_tokens == 0 && e.chunks[2].evicted_tokens == 12);
  CHECK(evicted == 12 + 3 * 4 && spoke);
  // the context lost exactly those tokens (the generated lengths may differ after an eviction)
  int gen_a = 0, gen_e = 0;
  for (int k = 0; k < e.n; k++) gen_a += a.chunks[k].n_ids - 1, gen_e += e.chunks[k].n_ids - 1;
  CHECK(e.chunks[5].context_tokens == a.chunks[5].context_tokens - evicted - gen_a + gen_e);
  // the context is sized for its fullest moment, the last chunk: the 24 evicted pads fewer than without
  CHECK(cap_c == cap_a && cap_e == cap_a - 24);
  printf("eviction: %d visual tokens evicted over %d chunks; context %d tokens vs %d without (capacity %d vs %d)\n",
         evicted, e.n, e.chunks[5].context_tokens, a.chunks[5].context_tokens, cap_e, cap_a);

  // 4. the same on the cpu-bf16 backend (the CUDA backend's storage types): cache == no cache, token for token
  lcc_backend *be16 = lcc_cpu_bf16_backend(0);
  lcc_model m16;
  LCC_CHECK(lcc_model_create(&m16, &cfg, be16, "") == 0 && lcc_model_load_hf(&m16, "tests/fixtures/tiny_b") == 0, "%s",
            lcc_last_error());
  lcc_stream_result a16, c16;
  int cap16;
  CHECK(run(&m16, tk, &clip, 0, 0, &a16, &cap16) == 0 && run(&m16, tk, &clip, 1, 0, &c16, &cap16) == 0);
  int same16 = a16.n == 6 && c16.n == 6;
  for (int k = 0; k < a16.n && same16; k++)
    same16 &= a16.chunks[k].n_ids == c16.chunks[k].n_ids &&
              !memcmp(a16.chunks[k].ids, c16.chunks[k].ids, (size_t)a16.chunks[k].n_ids * sizeof(int32_t));
  checkf(same16, "bf16: cache == no cache over %d chunks", a16.n);
  lcc_stream_result_free(&a16), lcc_stream_result_free(&c16);
  lcc_model_destroy(&m16);
  be16->destroy(be16);

  lcc_stream_result_free(&a), lcc_stream_result_free(&c), lcc_stream_result_free(&e);
  lcc_frames_free(&clip);
  lcc_tokenizer_free(tk);
  lcc_model_destroy(&m);
  be->destroy(be);
  return test_finish("test_stream");
}
