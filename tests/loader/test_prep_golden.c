// Golden interleave (the acceptance item; LIVECC.md 3.2-3.7): one hand-checked LiveCC line over a real
// MPEG-4 video, through livecc-prep into a shard; the sample read back must equal the token ids and loss mask
// written out below from the rules, piece by piece (special ids by name, text pieces tokenized one by one,
// pad counts from the grid worked out by hand), plus its items and frame count.
//
// The video: testsrc2, 112x84 at 4 fps, 9 s, so frame n ends at (n + 1) / 4 s (exact in binary).
// The clip window [1.1, 7.6] holds the frames ending at 1.25, 1.5, ..., 7.5. The 2-fps grid from 1.25 to
// 7.5 + 1e-6 is 1.25, 1.75, ..., 7.25 (13 stamps); each picks the frame ending exactly there; 13 is odd, so
// the last repeats: 14 frames ending at 1.25 1.75 2.25 2.75 3.25 3.75 | 4.25 4.75 | 5.25 5.75 | 6.25 6.75 |
// 7.25 7.25. 112x84 is already a multiple of 28 and within the budget: grid h = 6, w = 8, so a temporal
// patch is 6*8/4 = 12 tokens; the first chunk (3 patches) 36.
// Words (end times) and the chunk whose last frame takes them (end <= last pts):
//   red 1.6, circle 2.0        -> chunk 0 (<= 3.75)   "Time=0.0-3.0s"  "red circle ..."
//   blue 4.2, square 4.7       -> chunk 1 (<= 4.75)   "Time=3.0-4.0s"  "blue square ..."
//   (none)                     -> chunk 2 (<= 5.75)   "Time=4.0-5.0s"  " ..."   (interior silent second)
//   green 6.3, triangle 6.7    -> chunk 3 (<= 6.75)   "Time=5.0-6.0s"  "green triangle ..."
//   yellow 7.55 > 7.25         -> chunk 4 (<= 7.25)   silent, trailing: dropped with its frames
// So 4 pairs, 4 items ((3,6,8), then (1,6,8) x 3) and 12 frames; "yellow", ending after the last frame, is
// lost as in LiveCC (counted). With last_words = keep it is chunk 4's answer, "Time=6.0-7.0s" "yellow ...":
// 5 pairs, 5 items, 14 frames. The context (with_context): previous ASR "we saw shapes" is present, so the
// title is dropped: "\n\nwe saw shapes".strip(). Every word lies inside the window, so words_outside does
// not matter here.
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "prep_util.h"
#include "testlib.h"
#include "tokenizer.h"
#include "util.h"

static const char *LINE =
    "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"golden.mp4\", \"video_start\": 1.1, "
    "\"video_end\": 7.6}, {\"type\": \"text\", \"text\": \"\", \"previous\": \"we saw shapes\", \"title\": \"Shapes on parade\"}]}, "
    "{\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", \"text_stream\": [[1.3, 1.6, \"red\"], "
    "[1.6, 2.0, \" circle \"], [3.8, 4.2, \"blue\"], [4.2, 4.7, \"square\"], [5.9, 6.3, \"green\"], [6.3, 6.7, "
    "\"triangle\"], [7.3, 7.55, \"yellow\"]]}]}]\n";

// The expected sample, built piece by piece; `render` collects the same pieces as one string.
static lcc_tokenizer *tk;
static lcc_tok_scratch *ts;
static lcc_ids want;
static uint8_t want_mask[4096];
static char render[65536];
static int first_pad[8], n_items;

static void mark(int from, int trained) {
  for (int i = from; i < want.n; i++) want_mask[i] = (uint8_t)trained;
}

static void S(const char *name, int trained) {   // a special token
  int32_t id = lcc_tokenizer_id(tk, name);
  LCC_CHECK(id >= 0, "no token %s", name);
  lcc_ids_push(&want, id);
  mark(want.n - 1, trained);
  strcat(render, name);
}

static void T(const char *text, int trained) {   // a text piece, tokenized on its own
  int from = want.n;
  LCC_CHECK(lcc_tokenizer_encode(tk, ts, text, strlen(text), &want) == 0, "%s", lcc_last_error());
  mark(from, trained);
  strcat(render, text);
}

static void V(int t, int gh, int gw) {   // a video chunk: vision_start, t*gh*gw/4 pads, vision_end
  S("<|vision_start|>", 0);
  first_pad[n_items++] = want.n;
  for (int i = 0; i < t * gh * gw / 4; i++) S("<|video_pad|>", 0);
  S("<|vision_end|>", 0);
}

static void user(const char *time, int t, const char *context) {
  S("<|im_start|>", 0), T("user\n", 0), T(time, 0), V(t, 6, 8);
  if (context) T(context, 0);
  S("<|im_end|>", 0), T("\n", 0);
}

static void assistant(const char *words) {   // trained: the words, " ...", and <|im_end|>
  S("<|im_start|>", 0), T("assistant\n", 0), T(words, 1), S("<|im_end|>", 1), T("\n", 0);
}

static void expected(int with_context, int keep_last_words) {
  want.n = n_items = 0;
  render[0] = 0;
  S("<|im_start|>", 0), T("system\nYou are a helpful assistant.", 0), S("<|im_end|>", 0), T("\n", 0);
  user("Time=0.0-3.0s", 3, with_context ? "we saw shapes" : NULL), assistant("red circle ...");
  user("Time=3.0-4.0s", 1, NULL), assistant("blue square ...");
  user("Time=4.0-5.0s", 1, NULL), assistant(" ...");
  user("Time=5.0-6.0s", 1, NULL), assistant("green triangle ...");
  if (keep_last_words) user("Time=6.0-7.0s", 1, NULL), assistant("yellow ...");
}

static void check_sample(const lcc_sample *s, int pairs) {
  CHECK(s->n_tokens == want.n);
  int same = s->n_tokens == want.n;
  for (int i = 0; same && i < want.n; i++) same = s->ids[i] == want.ids[i] && s->mask[i] == want_mask[i];
  CHECK(same);
  if (!same)
    for (int i = 0; i < want.n && i < s->n_tokens; i++)
      if (s->ids[i] != want.ids[i] || s->mask[i] != want_mask[i]) {
        fprintf(stderr, "first difference at token %d: got %d/%d, want %d/%d\n", i, s->ids[i], s->mask[i], want.ids[i], want_mask[i]);
        break;
      }
  CHECK(s->n_items == pairs && n_items == pairs);
  for (int k = 0; k < s->n_items && k < pairs; k++) {
    const lcc_shard_item *it = &s->items[k];
    CHECK(it->kind == LCC_VIDEO && it->t == (k == 0 ? 3 : 1) && it->h == 6 && it->w == 8 && it->first_pad == first_pad[k]);
  }
  CHECK(s->n_frames == 6 + 2 * (pairs - 1));
  CHECK(!strcmp(s->source, "golden.mp4") && s->source_line == 1);
  CHECK(s->clip_start == 1.25 && s->clip_end == (pairs == 5 ? 7.25 : 6.75));   // the 14th frame repeats the 13th
}

static void run(const char *name, int with_context, int keep_last_words) {
  const char *dir = test_fresh_dir(name);
  char video[1200], jsonl[1200], out[1200], shard[1300];
  pu_path(video, sizeof video, dir, "golden.mp4");
  pu_path(jsonl, sizeof jsonl, dir, "golden.jsonl");
  pu_path(out, sizeof out, dir, "out");
  pu_path(shard, sizeof shard, out, "shard-00000.h5");
  pu_video(video, 112, 84, 4, 9);
  write_text(jsonl, LINE);

  // The frames the rules above assume.
  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.il.with_context = with_context, o.il.keep_last_words = keep_last_words;
  lcc_frames f;
  CHECK(lcc_video_read_strict(video, 1.1, 7.6, &o.budget, &f) == 0);
  const double pts[14] = {1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.25, 4.75, 5.25, 5.75, 6.25, 6.75, 7.25, 7.25};
  CHECK(f.T == 14 && f.h == 84 && f.w == 112);
  for (int i = 0; i < 14 && i < f.T; i++) CHECK(f.pts[i] == pts[i]);
  lcc_frames_free(&f);

  lcc_prep_stats st;
  int rc = pu_run(&o, &st, dir);
  if (rc) fprintf(stderr, "%s\n", lcc_last_error());
  CHECK(rc == 0 && st.samples_in == 1 && st.written == 1);
  CHECK(st.words_outside == 0 && st.words_after_last_frame == 1 && st.samples_words_after_last_frame == 1);
  expected(with_context, keep_last_words);
  // The pieces give what tokenizing the whole rendered string gives (what LiveCC's processor does).
  lcc_ids whole = {0};
  CHECK(lcc_tokenizer_encode(tk, ts, render, strlen(render), &whole) == 0);
  CHECK(whole.n == want.n && !memcmp(whole.ids, want.ids, (size_t)want.n * sizeof(int32_t)));
  lcc_ids_free(&whole);
  lcc_sample s;
  pu_shard_sample(shard, 0, &s);
  check_sample(&s, keep_last_words ? 5 : 4);
  lcc_sample_free(&s);
}

int main(void) {
  tk = lcc_tokenizer_load(TINY_TOKENIZER);
  LCC_CHECK(tk, "%s", lcc_last_error());
  ts = lcc_tok_scratch_new();
  run("golden_context", 1, 0);
  run("golden_no_context", 0, 0);
  run("golden_last_words_keep", 1, 1);
  lcc_ids_free(&want);
  lcc_tok_scratch_free(ts);
  lcc_tokenizer_free(tk);
  return test_finish("test_prep_golden");
}
