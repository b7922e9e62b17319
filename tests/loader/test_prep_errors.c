// Bad input: each bad sample is reported on stderr with its file:line and reason, counted by reason, and
// the job goes on; the summary numbers add up. A video cut short is skipped where the clip reaches past the
// cut (truncated = skip) or kept with a warning and a count (keep); a window with start after end is invalid.
// Words outside the clip window and after the last frame: kept or dropped as the switches say, counted either
// way. Then over-long samples: skipped (overlong = skip) or cut at a turn boundary (overlong = cut) whose
// tokens are a prefix of the full sample's.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prep_util.h"
#include "testlib.h"
#include "util.h"

// A streaming sample over good.mp4 (testsrc2 112x84, 4 fps, 9 s), as in the golden test, with a chosen
// video, window and word list.
static void stream_line(char *out, size_t cap, const char *video, double start, double end, const char *words) {
  snprintf(out, cap,
           "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"%s\", \"video_start\": %g, \"video_end\": %g}, "
           "{\"type\": \"text\", \"text\": \"\", \"title\": \"t\"}]}, {\"role\": \"assistant\", \"content\": "
           "[{\"type\": \"text_stream\", \"text_stream\": [%s]}]}]\n",
           video, start, end, words);
}

// The decoded text (special tokens left out) of the shard's sample i.
static void sample_text(const char *out, int64_t i, char *text, size_t cap) {
  char shard[1300];
  pu_path(shard, sizeof shard, out, "shard-00000.h5");
  lcc_sample s;
  pu_shard_sample(shard, i, &s);
  lcc_tokenizer *tk = lcc_tokenizer_load(TINY_TOKENIZER);
  LCC_CHECK(tk && lcc_tokenizer_decode(tk, s.ids, s.n_tokens, 1, text, cap) >= 0, "%s", lcc_last_error());
  lcc_tokenizer_free(tk);
  lcc_sample_free(&s);
}

static void summary_text(const lcc_prep_opts *o, const lcc_prep_stats *st, char *buf, size_t cap) {
  FILE *f = tmpfile();
  LCC_CHECK(f, "tmpfile failed");
  lcc_prep_print_summary(o, st, f);
  rewind(f);
  buf[fread(buf, 1, cap - 1, f)] = 0;
  fclose(f);
}

#define WORDS "[1.3, 1.6, \"red\"], [1.6, 2.0, \"circle\"], [3.8, 4.2, \"blue\"], [5.9, 6.3, \"green\"], [7.3, 7.55, \"yellow\"]"

// Lines of bad.jsonl and what becomes of them (reason 0 = written).
static const struct {
  const char *video;
  double start, end;
  const char *words;   // NULL: `raw` is the whole line
  const char *raw;
  int reason;
} cases[] = {
    {"good.mp4", 1.1, 7.6, WORDS, NULL, 0},
    {"missing.mp4", 1.1, 7.6, WORDS, NULL, LCC_SKIP_MISSING_MEDIA},
    {"corrupt.mp4", 1.1, 7.6, WORDS, NULL, LCC_SKIP_CORRUPT_MEDIA},
    {"empty.mp4", 1.1, 7.6, WORDS, NULL, LCC_SKIP_EMPTY_MEDIA},
    // good.mp4 with its index first (faststart), cut in half: 19 of its 36 frames, to 4.75 s
    {"cut.mp4", 1.1, 7.6, WORDS, NULL, LCC_SKIP_TRUNCATED_MEDIA},
    {"cut.mp4", 0.3, 3.9, "[1.3, 1.6, \"red\"], [1.6, 2.0, \"circle\"], [3.5, 3.8, \"blue\"]", NULL, 0},   // inside the part there is
    {"good.mp4", 7.6, 1.1, WORDS, NULL, LCC_SKIP_INVALID},
    {NULL, 0, 0, NULL, "[{\"role\": \"user\", \"content\": [{\"type\": \"video\"\n", LCC_SKIP_MALFORMED_JSON},
    {"good.mp4", 1.1, 7.6, "", NULL, LCC_SKIP_EMPTY_STREAM},
    // two words outside [1.1, 7.6]: counted and warned about, the sample is written
    {"good.mp4", 1.1, 7.6, "[0.2, 0.5, \"early\"], " WORDS ", [8.0, 8.4, \"late\"]", NULL, 0},
    // only words outside: kept (words_outside = keep, as LiveCC), "early" is the first chunk's answer
    {"good.mp4", 1.1, 7.6, "[0.2, 0.5, \"early\"], [8.0, 8.4, \"late\"]", NULL, 0},
    {"good.mp4", 1.1, 7.6, "[8.0, 8.4, \"late\"]", NULL, LCC_SKIP_ALL_SILENT},   // never reached
    {"good.mp4", 20, 25, "[21.0, 21.5, \"gone\"]", NULL, LCC_SKIP_NO_FRAMES},
    {"good.mp4", 1.1, 2.9, "[1.3, 1.6, \"red\"]", NULL, LCC_SKIP_FEW_FRAMES},
    {"good.mp4", 1.1, 7.6, "[7.3, 7.55, \"yellow\"]", NULL, LCC_SKIP_ALL_SILENT},
    {NULL, 0, 0, NULL, "[{\"role\": \"user\"}]\n", LCC_SKIP_INVALID},
    {NULL, 0, 0, NULL, "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"good.mp4\"}]}, "
                       "{\"role\": \"assistant\", \"content\": [{\"type\": \"text_stream\", \"text_stream\": "
                       "[[1.0, \"x\", 2.0]]}]}]\n", LCC_SKIP_INVALID},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

// dir/cut.mp4: dir/good.mp4 with its MP4 index moved to the front, cut to half its bytes (a download that
// stopped: the index lists every frame, the file holds the first half).
static void make_cut(const char *dir) {
  char good[1200], cut[1200], cmd[2600];
  pu_path(good, sizeof good, dir, "good.mp4");
  pu_path(cut, sizeof cut, dir, "cut.mp4");
  snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -i '%s' -c copy -movflags +faststart '%s'", good, cut);
  LCC_CHECK(system(cmd) == 0, "failed: %s", cmd);
  struct stat st;
  LCC_CHECK(stat(cut, &st) == 0 && truncate(cut, st.st_size / 2) == 0, "cannot cut %s", cut);
}

static void make_inputs(const char *dir, char *jsonl, size_t cap) {
  char path[1200];
  pu_path(path, sizeof path, dir, "good.mp4");
  pu_video(path, 112, 84, 4, 9);
  pu_path(path, sizeof path, dir, "corrupt.mp4");
  write_text(path, "this is not a video file, just some text that FFmpeg cannot parse as any container at all\n");
  pu_path(path, sizeof path, dir, "empty.mp4");
  write_text(path, "");
  make_cut(dir);
  pu_path(jsonl, cap, dir, "bad.jsonl");
  FILE *f = fopen(jsonl, "w");
  LCC_CHECK(f, "cannot write %s", jsonl);
  for (int i = 0; i < N_CASES; i++) {
    char line[4096];
    if (cases[i].raw) snprintf(line, sizeof line, "%s", cases[i].raw);
    else stream_line(line, sizeof line, cases[i].video, cases[i].start, cases[i].end, cases[i].words);
    fputs(line, f);
  }
  fclose(f);
}

static void bad_samples(void) {
  const char *dir = test_fresh_dir("errors");
  char jsonl[1200], out[1200], log[1200];
  make_inputs(dir, jsonl, sizeof jsonl);
  pu_path(out, sizeof out, dir, "out");
  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.samples_per_shard = 5;   // 4 shards
  o.workers = 2;
  lcc_prep_stats st;
  CHECKF(pu_run(&o, &st, dir) == 0, "%s", lcc_last_error());

  int64_t want[LCC_SKIP_COUNT] = {0};
  for (int i = 0; i < N_CASES; i++) want[cases[i].reason]++;
  CHECK(st.samples_in == N_CASES && st.written == want[0] && st.shards == 4);
  for (int r = 1; r < LCC_SKIP_COUNT; r++) {
    CHECKF(st.skipped[r] == want[r], "reason %s: %lld skipped, want %lld", lcc_skip_keys[r], (long long)st.skipped[r],
           (long long)want[r]);
  }
  CHECK(st.words_outside == 5 && st.samples_words_outside == 3);
  // "yellow" (7.55 > the last frame's 7.25) in lines 1 and 10; "blue" (3.8 > 3.5) in line 6 (cut.mp4).
  CHECK(st.words_after_last_frame == 3 && st.samples_words_after_last_frame == 3);

  // One message per bad sample, naming its file:line and the reason.
  pu_path(log, sizeof log, dir, "stderr.txt");
  char *text = pu_read(log);
  for (int i = 0; i < N_CASES; i++) {
    char where[1300], message[1600];
    snprintf(where, sizeof where, "%s:%d: ", jsonl, i + 1);
    if (cases[i].reason == 0) {
      const char *at = strstr(text, where);
      CHECK(i != 9 || (at && strstr(at, "2 of 7 words lie outside the clip window [1.1, 7.6] s and are kept, as in LiveCC")));
      continue;
    }
    snprintf(message, sizeof message, "skipped (%s): %s", lcc_skip_labels[cases[i].reason], where);
    CHECKF(strstr(text, message), "no message '%s' in:\n%s", message, text);
  }
  free(text);

  // The summary reads the sidecars: the same numbers.
  char buf[4096];
  summary_text(&o, &st, buf, sizeof buf);
  CHECK(strstr(buf, "samples in:  17\n") && strstr(buf, "written:     4\n") && strstr(buf, "skipped:     13\n"));
  CHECK(strstr(buf, "words outside the clip window (kept, as LiveCC: words_outside = keep): 5 in 3 samples\n"));
  CHECK(strstr(buf, "words ending after the last frame (lost, as in LiveCC: last_words = drop): 3 in 3 written samples\n"));
  CHECK(st.truncated_kept == 0 && strstr(buf, "kept from video files cut short (truncated = keep): 0 samples"));
  text = pu_read(log);
  CHECKF(strstr(text, "cut.mp4 is cut short: 19 of the 36 frames its container lists are in the file (up to 4.75 s), "
                      "the clip window ends at 7.60 s (truncated = keep uses the frames there are)"),
         "the truncated video's message:\n%s", text);
  CHECKF(strstr(text, "invalid window: video_start 7.6 > video_end 1.1"), "the invalid window's message:\n%s", text);
  free(text);
}

// truncated = keep: the clip reaching past the cut is written with the frames there are, warned and counted.
static void keep_truncated(void) {
  const char *dir = test_fresh_dir("keep_truncated");
  char good[1200], jsonl[1200], out[1200], log[1200], line[4096];
  pu_path(good, sizeof good, dir, "good.mp4");
  pu_video(good, 112, 84, 4, 9);
  make_cut(dir);
  pu_path(jsonl, sizeof jsonl, dir, "cut.jsonl");
  stream_line(line, sizeof line, "cut.mp4", 1.1, 7.6, WORDS);
  write_text(jsonl, line);
  pu_path(out, sizeof out, dir, "out");
  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.keep_truncated = 1;
  lcc_prep_stats st;
  CHECKF(pu_run(&o, &st, dir) == 0, "%s", lcc_last_error());
  check(st.written == 1 && st.truncated_kept == 1 && st.skipped[LCC_SKIP_TRUNCATED_MEDIA] == 0,
        "truncated = keep: written and counted");
  pu_path(log, sizeof log, dir, "stderr.txt");
  char *text = pu_read(log);
  CHECKF(strstr(text, "warning: ") && strstr(text, "cut.mp4 is cut short: 19 of the 36 frames") &&
         strstr(text, "kept with the frames there are (truncated = keep)"), "the warning:\n%s", text);
  free(text);
  char shard[1300];
  pu_path(shard, sizeof shard, out, "shard-00000.h5");
  lcc_sample s;
  pu_shard_sample(shard, 0, &s);
  checkf(s.clip_end < 4.8, "the sample ends where the file does (%.2f s)", s.clip_end);
  lcc_sample_free(&s);
}

// The switches where livecc-prep may leave LiveCC, through the job: words outside the clip window (keep, as
// LiveCC: "early" is said in the first chunk, "late" never; drop: neither, and a sample with only such words
// has an empty text_stream) and the word after the last frame ("yellow", 7.55 > 7.25: lost, as LiveCC, or
// kept in the last chunk). Both are counted either way.
static void switches(void) {
  const char *dir = test_fresh_dir("switches");
  char video[1200], jsonl[1200], out[1200], line[4096], text[16384], sum[4096];
  pu_path(video, sizeof video, dir, "good.mp4");
  pu_video(video, 112, 84, 4, 9);
  pu_path(jsonl, sizeof jsonl, dir, "words.jsonl");
  FILE *f = fopen(jsonl, "w");
  LCC_CHECK(f, "cannot write %s", jsonl);
  stream_line(line, sizeof line, "good.mp4", 1.1, 7.6, "[0.2, 0.5, \"early\"], " WORDS ", [8.0, 8.4, \"late\"]");
  fputs(line, f);
  stream_line(line, sizeof line, "good.mp4", 1.1, 7.6, "[0.2, 0.5, \"early\"], [8.0, 8.4, \"late\"]");
  fputs(line, f);
  stream_line(line, sizeof line, "good.mp4", 1.1, 7.6, "[8.0, 8.4, \"late\"]");
  fputs(line, f);
  fclose(f);
  const char *inputs[] = {jsonl};
  lcc_prep_opts o;
  lcc_prep_stats st;

  // The defaults: LiveCC's behaviour.
  pu_path(out, sizeof out, dir, "liveCC");
  pu_opts(&o, inputs, 1, out);
  CHECKF(pu_run(&o, &st, dir) == 0, "%s", lcc_last_error());
  CHECK(st.written == 2 && st.skipped[LCC_SKIP_ALL_SILENT] == 1);
  CHECK(st.words_outside == 5 && st.samples_words_outside == 3);
  CHECK(st.words_after_last_frame == 1 && st.samples_words_after_last_frame == 1);
  sample_text(out, 0, text, sizeof text);
  CHECKF(strstr(text, "assistant\nearly red circle ...") && strstr(text, "assistant\nblue ...") && !strstr(text, "late") &&
         !strstr(text, "yellow"), "words_outside = keep, last_words = drop:\n%s", text);
  sample_text(out, 1, text, sizeof text);
  CHECKF(strstr(text, "assistant\nearly ...") && !strstr(text, "late"), "only words outside, keep:\n%s", text);
  summary_text(&o, &st, sum, sizeof sum);
  CHECKF(strstr(sum, "words outside the clip window (kept, as LiveCC: words_outside = keep): 5 in 3 samples\n") &&
         strstr(sum, "words ending after the last frame (lost, as in LiveCC: last_words = drop): 1 in 1 written samples\n"),
         "%s", sum);

  // words_outside = drop, last_words = keep.
  pu_path(out, sizeof out, dir, "switched");
  pu_opts(&o, inputs, 1, out);
  o.drop_words_outside = 1, o.il.keep_last_words = 1;
  CHECKF(pu_run(&o, &st, dir) == 0, "%s", lcc_last_error());
  CHECK(st.written == 1 && st.skipped[LCC_SKIP_EMPTY_STREAM] == 2);
  CHECK(st.words_outside == 5 && st.samples_words_outside == 3);
  CHECK(st.words_after_last_frame == 1 && st.samples_words_after_last_frame == 1);
  sample_text(out, 0, text, sizeof text);
  CHECKF(strstr(text, "assistant\nred circle ...") && strstr(text, "assistant\nyellow ...") && !strstr(text, "early") &&
         !strstr(text, "late"), "words_outside = drop, last_words = keep:\n%s", text);
  summary_text(&o, &st, sum, sizeof sum);
  CHECKF(strstr(sum, "words outside the clip window (dropped: words_outside = drop): 5 in 3 samples\n") &&
         strstr(sum, "words ending after the last frame (kept in the last chunk: last_words = keep): 1 in 1 written samples\n"),
         "%s", sum);
  char log[1200];
  pu_path(log, sizeof log, dir, "stderr.txt");
  char *err = pu_read(log);
  CHECKF(strstr(err, "words.jsonl:1: 2 of 7 words lie outside the clip window [1.1, 7.6] s and are dropped (words_outside = drop)") &&
         strstr(err, "words.jsonl:2: all 2 words of text_stream lie outside the clip window [1.1, 7.6] s (words_outside = drop)"),
         "the messages:\n%s", err);
  free(err);
}

// The golden-style sample is 12 frames, 4 pairs; its tokens: see test_prep_golden.c. A limit below it
// skips it (skip) or keeps the pairs that fit, ending on a non-silent one (cut).
static void too_long(void) {
  const char *d = test_fresh_dir("too_long");
  char video[1200], jsonl[1200], out_full[1200], out_skip[1200], out_cut[1200], shard[1300];
  pu_path(video, sizeof video, d, "good.mp4");
  pu_video(video, 112, 84, 4, 9);
  pu_path(jsonl, sizeof jsonl, d, "long.jsonl");
  char line[4096];
  stream_line(line, sizeof line, "good.mp4", 1.1, 7.6,
              "[1.3, 1.6, \"red\"], [3.8, 4.2, \"blue\"], [5.9, 6.3, \"green\"], [7.3, 7.55, \"yellow\"]");
  write_text(jsonl, line);
  const char *inputs[] = {jsonl};
  lcc_prep_opts o;
  lcc_prep_stats st;
  lcc_sample full, cut;

  pu_path(out_full, sizeof out_full, d, "full");
  pu_opts(&o, inputs, 1, out_full);
  CHECK(pu_run(&o, &st, d) == 0 && st.written == 1);
  pu_path(shard, sizeof shard, out_full, "shard-00000.h5");
  pu_shard_sample(shard, 0, &full);
  CHECK(full.n_items == 4);   // pairs: "red", "blue", silent, "green"

  // A limit inside the last pair: skip drops the sample, cut keeps pairs 0-1 (pair 2 is silent).
  int limit = full.items[3].first_pad;
  pu_path(out_skip, sizeof out_skip, d, "skip");
  pu_opts(&o, inputs, 1, out_skip);
  o.il.max_seq_len = limit, o.il.overlong_skip = 1;
  CHECK(pu_run(&o, &st, d) == 0 && st.written == 0 && st.skipped[LCC_SKIP_TOO_LONG] == 1);

  pu_path(out_cut, sizeof out_cut, d, "cut");
  pu_opts(&o, inputs, 1, out_cut);
  o.il.max_seq_len = limit;
  CHECK(pu_run(&o, &st, d) == 0 && st.written == 1 && st.cut_samples == 1 && st.cut_pairs == 2);
  pu_path(shard, sizeof shard, out_cut, "shard-00000.h5");
  pu_shard_sample(shard, 0, &cut);
  CHECK(cut.n_items == 2 && cut.n_frames == 8 && cut.n_tokens < limit && cut.n_tokens < full.n_tokens);
  CHECK(!memcmp(cut.ids, full.ids, (size_t)cut.n_tokens * 4) && !memcmp(cut.mask, full.mask, (size_t)cut.n_tokens));
  CHECK(cut.n_tokens >= 2 && cut.mask[cut.n_tokens - 2] == 1 && cut.mask[cut.n_tokens - 1] == 0);   // ... <|im_end|> "\n"

  // Not even the first pair fits: skipped as too long under cut too.
  pu_path(out_cut, sizeof out_cut, d, "cut_all");
  pu_opts(&o, inputs, 1, out_cut);
  o.il.max_seq_len = 20;
  CHECK(pu_run(&o, &st, d) == 0 && st.written == 0 && st.skipped[LCC_SKIP_TOO_LONG] == 1);
  lcc_sample_free(&full);
  lcc_sample_free(&cut);
}

int main(void) {
  bad_samples();
  keep_truncated();
  switches();
  too_long();
  return test_finish("test_prep_errors");
}
