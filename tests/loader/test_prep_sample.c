// The sample parser and the word bucketing, without video: the dataset card's example line (its trailing
// "..." is not a word), QA shapes, clear errors naming the line, words outside the clip window, LiveCC's
// cursor (including its last-word edge case and the fix), Python's strip, and the streaming interleave over
// synthetic frames with that edge case; then, answer by answer and token for token, the two switches where
// livecc-prep may leave LiveCC: words outside the clip window (keep, as LiveCC, or drop) and the words after
// the last frame (drop, as LiveCC, or keep).
#include <stdlib.h>
#include <string.h>

#include "interleave.h"
#include "model.h"
#include "prep_util.h"
#include "sample.h"
#include "testlib.h"
#include "util.h"

static const char *CARD =
    "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"video/youtube/-4dnPeRv1ns.mp4\", "
    "\"video_start\": 16.8, \"video_end\": 158.8}, {\"type\": \"text\", \"text\": \"\", \"previous\": \"\", \"title\": "
    "\"Airsoft G&G Combat Machine M4 Review\"}]}, {\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", "
    "\"text_stream\": [[16.8, 16.9, \"all\"], [16.9, 17.0, \"right\"], [17.0, 17.1, \"you\"], [17.1, 17.3, \"guys\"], "
    "[17.3, 17.4, \"so\"], [17.4, 17.5, \"this\"], \"...\"]}]}]";

static int parses(const char *line, lcc_conv *c) {
  int json_error;
  return lcc_conv_parse(line, strlen(line), "x.jsonl:3", c, &json_error) == 0;
}

static void expect_parse_error(const char *line, int want_json_error, const char *want) {
  lcc_conv c;
  int json_error;
  int rc = lcc_conv_parse(line, strlen(line), "x.jsonl:3", &c, &json_error);
  CHECKF(rc != 0 && json_error == want_json_error && strstr(lcc_last_error(), "x.jsonl:3: ") == lcc_last_error() &&
             strstr(lcc_last_error(), want),
         "%s: expected an error with '%s', got %s", line, want, rc ? lcc_last_error() : "success");
}

static void parse_card(void) {
  lcc_conv c;
  CHECK(parses(CARD, &c));
  CHECK(c.stream && c.n_turns == 2 && c.n_words == 6 && c.n_ignored == 1);
  const lcc_elem *v = &c.elems[c.turns[0].first], *t = &c.elems[c.turns[0].first + 1];
  CHECK(v->kind == LCC_ELEM_VIDEO && !strcmp(v->text, "video/youtube/-4dnPeRv1ns.mp4") && v->start == 16.8 && v->end == 158.8);
  CHECK(t->kind == LCC_ELEM_TEXT && t->text_len == 0 && t->previous && t->previous_len == 0 &&
        !strcmp(t->title, "Airsoft G&G Combat Machine M4 Review"));
  CHECK(c.words[3].start == 17.1 && c.words[3].end == 17.3 && !strcmp(c.words[3].word, "guys"));
  CHECK(lcc_conv_drop_words_outside(&c) == 0 && c.n_words == 6);
  lcc_conv_free(&c);

  // Words outside [17.0, 17.2] are dropped: "all" (ends 16.9) and "so", "this" (start after 17.2).
  char line[2048];
  snprintf(line, sizeof line, "%s", CARD);
  char *s = strstr(line, "16.8, \"video_end\": 158.8");
  memcpy(s, "17.0, \"video_end\": 17.20", 24);
  CHECK(parses(line, &c) && lcc_conv_drop_words_outside(&c) == 3 && c.n_words == 3 && !strcmp(c.words[0].word, "right"));
  lcc_conv_free(&c);
}

static void parse_qa(void) {
  lcc_conv c;
  CHECK(parses("[{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": [{\"type\": \"image\", "
               "\"image\": \"a.png\"}, {\"type\": \"video\", \"video\": \"b.mp4\"}, {\"type\": \"text\", \"text\": \"q\"}]}, "
               "{\"role\": \"assistant\", \"content\": \"a\"}]", &c));
  CHECK(!c.stream && c.n_turns == 3 && c.n_elems == 5);
  CHECK(c.turns[1].role == LCC_ROLE_USER && c.turns[1].n == 3 && c.elems[1].kind == LCC_ELEM_IMAGE && c.elems[2].kind == LCC_ELEM_VIDEO);
  CHECK(c.elems[2].start == 0 && c.elems[2].end == -1 && c.elems[4].kind == LCC_ELEM_TEXT && !strcmp(c.elems[4].text, "a"));
  lcc_conv_free(&c);

  expect_parse_error("[{\"role\": \"user\", \"content\": [", 1, "");
  expect_parse_error("{\"role\": \"user\"}", 0, "non-empty array of messages");
  expect_parse_error("[{\"role\": \"robot\", \"content\": \"x\"}]", 0, "message 0: 'role' must be system, user or assistant");
  expect_parse_error("[{\"role\": \"user\", \"content\": \"x\"}]", 0, "no assistant message");
  expect_parse_error("[{\"role\": \"user\", \"content\": [{\"type\": \"audio\", \"audio\": \"a.wav\"}]}, {\"role\": \"assistant\", "
               "\"content\": \"x\"}]", 0, "message 0, content element 0: unsupported type 'audio'");
  expect_parse_error("[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"v.mp4\", \"video_start\": \"1\"}]}, "
               "{\"role\": \"assistant\", \"content\": \"x\"}]", 0, "'video_start' must be a number");
  expect_parse_error("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": [{\"type\": \"image\", "
               "\"image\": \"a.png\"}]}]", 0, "image elements are only allowed in user messages");
  expect_parse_error("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"q\"}]}, {\"role\": \"assistant\", "
               "\"content\": [{\"type\": \"text_stream\", \"text_stream\": [[1, 2, \"a\"]]}]}]", 0, "user content must be [video, text]");
  expect_parse_error("[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"v.mp4\"}]}, {\"role\": \"assistant\", "
               "\"content\": [{\"type\": \"text_stream\", \"text_stream\": [[1, 2, \"a\"], [2, 3]]}]}]", 0,
               "text_stream element 1 is not [start, end, word]");
}

static lcc_word W(double end, const char *w) { return (lcc_word){end - 0.2, end, w, strlen(w)}; }

static void bucketing(void) {
  lcc_str phrase = {0};
  const lcc_word w[3] = {W(1.0, "  a "), W(2.0, "\xc2\xa0" "b\xe3\x80\x80"), W(3.0, "c")};   // NBSP, ideographic space
  int cursor = 0;
  CHECK(lcc_bucket_words(w, 3, 0.5, &cursor, 0, &phrase) == 0 && phrase.n == 0 && cursor == 0);
  CHECK(lcc_bucket_words(w, 3, 2.0, &cursor, 0, &phrase) == 2 && !strcmp(phrase.s, "a b") && cursor == 2);
  // Every remaining word fits: LiveCC leaves the cursor on the last word, so the next window emits it again.
  CHECK(lcc_bucket_words(w, 3, 3.5, &cursor, 0, &phrase) == 1 && !strcmp(phrase.s, "c") && cursor == 2);
  CHECK(lcc_bucket_words(w, 3, 4.0, &cursor, 0, &phrase) == 1 && !strcmp(phrase.s, "c") && cursor == 2);
  cursor = 2;
  CHECK(lcc_bucket_words(w, 3, 3.5, &cursor, 1, &phrase) == 1 && cursor == 3);
  CHECK(lcc_bucket_words(w, 3, 4.0, &cursor, 1, &phrase) == 0 && phrase.n == 0 && cursor == 3);
  // Empty words leave their spaces inside the phrase, as Python's ' '.join-by-concatenation does.
  const lcc_word e[3] = {W(1.0, "x"), W(1.0, " "), W(1.0, "y")};
  cursor = 0;
  CHECK(lcc_bucket_words(e, 3, 1.0, &cursor, 0, &phrase) == 3 && !strcmp(phrase.s, "x  y"));
  free(phrase.s);
}

// Ten frames ending at 0.5, 1.0, ..., 5.0 (chunks: [0,6) -> 3.0, [6,8) -> 4.0, [8,10) -> 5.0); the only word
// ends at 2.5, so it is taken in chunk 0 and LiveCC's cursor takes it again in chunks 1 and 2.
static void edge_case_interleave(void) {
  lcc_tokenizer *tk = lcc_tokenizer_load(TINY_TOKENIZER);
  LCC_CHECK(tk, "%s", lcc_last_error());
  lcc_tok_scratch *ts = lcc_tok_scratch_new();
  lcc_frames clip = {.T = 10, .h = 28, .w = 56};
  double pts[10];
  for (int i = 0; i < 10; i++) pts[i] = 0.5 * (i + 1);
  clip.pts = pts;
  lcc_conv c;
  CHECK(parses("[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"v.mp4\"}]}, {\"role\": \"assistant\", "
               "\"content\": [{\"type\": \"text_stream\", \"text_stream\": [[2.2, 2.5, \"red\"]]}]}]", &c));
  lcc_interleave_opts o = {.fps = 2, .system_prompt = "", .max_seq_len = 0};
  lcc_interleaver il;
  lcc_seq q = {0};
  CHECK(lcc_interleaver_init(&il, tk, &o) == 0);
  int32_t red[8];
  lcc_ids red_ids = {0};
  CHECK(lcc_tokenizer_encode(tk, ts, "red ...", 7, &red_ids) == 0);
  memcpy(red, red_ids.ids, sizeof(int32_t) * (size_t)red_ids.n);
  for (int fix = 0; fix < 2; fix++) {
    il.o.fix_last_word = fix;
    CHECK(lcc_interleave_stream(&il, ts, &c, &clip, "v", &q) == 0);
    // LiveCC: 3 pairs, each answering "red ..."; fixed: 1 pair (the silent ones after it are dropped).
    CHECK(q.pairs == (fix ? 1 : 3) && q.n_items == q.pairs && q.items[0].t == 3 && q.items[0].h == 2 && q.items[0].w == 4);
    int answers = 0;   // occurrences of "red ..." in the trained tokens
    for (int i = 0; i + red_ids.n <= q.ids.n; i++)
      answers += q.mask[i] && !memcmp(&q.ids.ids[i], red, sizeof(int32_t) * (size_t)red_ids.n);
    CHECK(answers == (fix ? 1 : 3));
  }
  // Fewer frames than the first chunk needs.
  clip.T = 4;
  CHECK(lcc_interleave_stream(&il, ts, &c, &clip, "v.jsonl:9", &q) == LCC_SKIP_FEW_FRAMES &&
        strstr(lcc_last_error(), "v.jsonl:9: 4 frames"));
  CHECK(lcc_interleaver_init(&il, tk, &(lcc_interleave_opts){.fps = 3}) != 0 && strstr(lcc_last_error(), "whole multiple of 2"));
  lcc_ids_free(&red_ids);
  lcc_seq_free(&q);
  lcc_conv_free(&c);
  lcc_tok_scratch_free(ts);
  lcc_tokenizer_free(tk);
}

// ---- the divergence switches: words outside the clip window, words after the last frame ----

static lcc_tokenizer *tk;
static lcc_tok_scratch *ts;

// A streaming line over the window [start, end] with the given text_stream elements.
static void window_line(char *out, size_t cap, double start, double end, const char *words) {
  snprintf(out, cap,
           "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"v.mp4\", \"video_start\": %g, "
           "\"video_end\": %g}]}, {\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", \"text_stream\": "
           "[%s]}]}]",
           start, end, words);
}

// The trained runs of q, in order, must be exactly tokenize(want[k] + " ...") then <|im_end|>: the answer of
// pair k, token for token ("" for a silent second).
static void check_answers(const lcc_interleaver *il, const lcc_seq *q, const char *const *want, int n_want,
                          const char *what) {
  lcc_ids ids = {0};
  int k = 0, i = 0;
  for (; i < q->ids.n; k++) {
    while (i < q->ids.n && !q->mask[i]) i++;
    if (i == q->ids.n) break;
    int j = i;
    while (j < q->ids.n && q->mask[j]) j++;
    char text[256], got[512];
    if (lcc_tokenizer_decode(tk, &q->ids.ids[i], j - i, 0, got, sizeof got) < 0)
      snprintf(got, sizeof got, "(undecodable)");
    if (!CHECKF(k < n_want, "%s: answer %d '%s' is one too many (want %d)", what, k, got, n_want)) break;
    snprintf(text, sizeof text, "%s ...", want[k]);
    ids.n = 0;
    CHECK(lcc_tokenizer_encode(tk, ts, text, strlen(text), &ids) == 0);
    lcc_ids_push(&ids, il->im_end);
    int same = ids.n == j - i && !memcmp(ids.ids, &q->ids.ids[i], sizeof(int32_t) * (size_t)ids.n);
    CHECKF(same, "%s: answer %d is '%s', want '%s<|im_end|>'", what, k, got, text);
    i = j;
  }
  CHECKF(k == n_want && q->pairs == n_want, "%s: %d answers in %d pairs, want %d", what, k, q->pairs, n_want);
  lcc_ids_free(&ids);
}

// Ten frames ending at 1.5, 2.0, ..., 6.0: chunks [0,6) -> 4.0, [6,8) -> 5.0, [8,10) -> 6.0.
static void window_clip(lcc_frames *clip, double *pts) {
  for (int i = 0; i < 10; i++) pts[i] = 1.0 + 0.5 * (i + 1);
  *clip = (lcc_frames){.T = 10, .h = 28, .w = 56, .pts = pts};
}

// Interleaves `line` with words_outside = keep (the words as they are, LiveCC) or drop, and checks the answers.
static void expect_stream(lcc_interleaver *il, const char *line, int drop, int want_outside, const char *const *want,
                          int n_want, int want_after, const char *what) {
  lcc_frames clip;
  double pts[10];
  window_clip(&clip, pts);
  lcc_conv c;
  lcc_seq q = {0};
  CHECKF(parses(line, &c), "%s: %s", what, lcc_last_error());
  int outside = lcc_conv_count_words_outside(&c);
  CHECKF(outside == want_outside, "%s: %d words outside, want %d", what, outside, want_outside);
  if (drop) CHECK(lcc_conv_drop_words_outside(&c) == want_outside && lcc_conv_count_words_outside(&c) == 0);
  CHECKF(lcc_interleave_stream(il, ts, &c, &clip, what, &q) == 0, "%s: %s", what, lcc_last_error());
  check_answers(il, &q, want, n_want, what);
  CHECKF(q.words_after_last_frame == want_after, "%s: %d words after the last frame, want %d", what,
         q.words_after_last_frame, want_after);
  lcc_seq_free(&q);
  lcc_conv_free(&c);
}

// Window [1.0, 6.0]: "early" ends before it, "late" starts after it. keep (LiveCC): "early" joins chunk 0 and
// the cursor stops at "late" from then on, so "blue" is said once and "late" never. drop: neither appears,
// and "blue", now the last word, is said again in every remaining window (LiveCC's cursor on the new last
// word) unless fix_last_word.
static void words_outside_window(lcc_interleaver *il) {
  char line[2048];
  window_line(line, sizeof line, 1.0, 6.0,
              "[0.2, 0.6, \"early\"], [1.5, 2.5, \"red\"], [4.2, 4.8, \"blue\"], [6.5, 7.0, \"late\"]");
  const char *keep[] = {"early red", "blue"}, *drop[] = {"red", "blue", "blue"}, *drop_fixed[] = {"red", "blue"};
  expect_stream(il, line, 0, 2, keep, 2, 0, "words_outside = keep");
  expect_stream(il, line, 1, 2, drop, 3, 0, "words_outside = drop");
  il->o.fix_last_word = 1;
  expect_stream(il, line, 1, 2, drop_fixed, 2, 0, "words_outside = drop, fix_last_word");
  expect_stream(il, line, 0, 2, keep, 2, 0, "words_outside = keep, fix_last_word");
  il->o.fix_last_word = 0;
  // Only words outside: kept, "early" still makes a sample of one pair.
  window_line(line, sizeof line, 1.0, 6.0, "[0.2, 0.6, \"early\"], [6.5, 7.0, \"late\"]");
  const char *early[] = {"early"};
  expect_stream(il, line, 0, 2, early, 1, 0, "only words outside, keep");
}

// Window [1.0, 6.5]: "yellow" ends at 6.3, inside the window but after the last frame (6.0); "late" lies after
// the window. drop (LiveCC): "yellow" is lost, counted; keep: it is the last chunk's answer, and "late" is not
// (words outside the window follow words_outside).
static void words_after_last_frame(lcc_interleaver *il) {
  char line[2048];
  window_line(line, sizeof line, 1.0, 6.5,
              "[1.5, 2.5, \"red\"], [4.2, 4.8, \"blue\"], [5.8, 6.3, \"yellow\"], [7.0, 7.5, \"late\"]");
  const char *lost[] = {"red", "blue"}, *kept[] = {"red", "blue", "yellow"};
  expect_stream(il, line, 0, 1, lost, 2, 1, "last_words = drop");
  il->o.keep_last_words = 1;
  expect_stream(il, line, 0, 1, kept, 3, 1, "last_words = keep");
  expect_stream(il, line, 1, 1, kept, 3, 1, "last_words = keep, words_outside = drop");
  // Appended to what the last chunk already says. "green" ends before the last frame but comes after
  // "yellow", where the cursor stops: it is lost with it (drop) or kept with it (keep).
  window_line(line, sizeof line, 1.0, 6.5,
              "[1.5, 2.5, \"red\"], [5.5, 5.9, \"blue\"], [5.8, 6.4, \"yellow\"], [5.9, 6.0, \"green\"]");
  const char *joined[] = {"red", "", "blue yellow green"};
  expect_stream(il, line, 0, 0, joined, 3, 2, "last_words = keep, after a taken word");
  il->o.keep_last_words = 0;
  const char *cut[] = {"red", "", "blue"};
  expect_stream(il, line, 0, 0, cut, 3, 2, "last_words = drop, after a taken word");
}

static void divergences(void) {
  tk = lcc_tokenizer_load(TINY_TOKENIZER);
  LCC_CHECK(tk, "%s", lcc_last_error());
  ts = lcc_tok_scratch_new();
  lcc_interleaver il;
  CHECK(lcc_interleaver_init(&il, tk, &(lcc_interleave_opts){.fps = 2, .system_prompt = ""}) == 0);
  words_outside_window(&il);
  words_after_last_frame(&il);
  lcc_tok_scratch_free(ts);
  lcc_tokenizer_free(tk);
}

int main(void) {
  parse_card();
  parse_qa();
  bucketing();
  edge_case_interleave();
  divergences();
  return test_finish("test_prep_sample");
}
