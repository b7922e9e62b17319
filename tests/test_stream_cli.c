// livecc-stream and livecc-eval --mcq as programs, on real FFmpeg-encoded videos with the tiny model:
//   a run prints one line per chunk and the latency summary; check mode scores the chunks up to the last
//   one with transcript words; bad inputs (a window after the video's end, an undecodable file, a missing
//   file, a missing tokenizer, a checkpoint of an unknown format version, a clip shorter than the first
//   chunk) each end with one clear message and exit status 1;
//   multiple choice: the predicted letter, and the option letters' logits, equal those computed here with
//   lcc_infer from the prompt written out in full.
//   test_stream_cli LIVECC_STREAM LIVECC_EVAL
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "infer.h"
#include "media.h"
#include "media_testlib.h"
#include "tokenizer.h"
#include "util.h"

static char out[1 << 16];   // output of the last command

// Runs a shell command with stderr merged into stdout; returns its exit status.
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  strcat(cmd, " 2>&1");
  FILE *p = popen(cmd, "r");
  LCC_CHECK(p, "popen %s", cmd);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int has(const char *s) {
  if (strstr(out, s)) return 1;
  fprintf(stderr, "expected \"%s\" in the output:\n%s\n", s, out);
  return 0;
}

static int count_lines_with(const char *s) {
  int n = 0;
  for (const char *p = out; (p = strstr(p, s)); p += strlen(s)) n++;
  return n;
}

static const char *MODEL = "--model=tests/fixtures/tiny_b --init=tests/fixtures/tiny_b --tokenizer=configs/tokenizer/tiny --min_pixels=3136";

static void test_stream_program(const char *bin, const char *video) {
  // 8 s at 2 fps: the first chunk (3 s), then 5 one-second chunks; frames ending in [2, 7.9] s: 4 chunks
  CHECK(run("%s %s --video=%s --max_new_tokens=4", bin, MODEL, video) == 0);
  CHECK(count_lines_with(" s | ") == 6 && has("    0.0-3.0     s | ") && has("    7.0-8.0     s | "));
  CHECK(has("with KV cache: 6 chunks, 8.0 s of video") && has("keeps up with real time: yes"));
  CHECK(run("%s %s --video=%s --max_new_tokens=4 --backend=cpu-bf16", bin, MODEL, video) == 0);   // bf16 act tensors
  CHECK(count_lines_with(" s | ") == 6 && has("with KV cache: 6 chunks, 8.0 s of video"));
  CHECK(run("%s %s --video=%s --backend=gpu", bin, MODEL, video) == 2 && has("backend must be cpu, cpu-bf16 or cuda, got 'gpu'"));
  CHECK(run("%s %s --video=%s --max_new_tokens=4 --no_cache --start=2 --end=7.9", bin, MODEL, video) == 0);
  CHECK(count_lines_with(" s | ") == 4 && has("    2.0-5.0     s | ") && has("    7.0-8.0     s | ") && has("without KV cache"));

  // check mode: words end in the 3rd (red: 3.8 s <= 4.625 s, the chunk's last frame) and 5th chunk; the 6th
  // chunk has none (LiveCC's cursor would say "blue" again: --fix_last_word=false) and is not scored
  write_text(tmp_path("check.jsonl"),
             "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"clip.mp4\", \"video_start\": 0, "
             "\"video_end\": 8}, {\"type\": \"text\", \"text\": \"Name the shapes.\"}]}, {\"role\": \"assistant\", "
             "\"content\": [{\"type\": \"text_stream\", \"text_stream\": [[3.4, 3.8, \"red\"], [5.4, 5.8, \"blue\"]]}]}]\n");
  CHECK(run("%s %s --check=%s --quiet", bin, MODEL, tmp_path("check.jsonl")) == 0);
  // 5 chunks scored: the first by its 3 seconds, then 4 one-second chunks
  CHECK(has(" of 7 seconds of 1 samples") && has("1 trailing chunks without transcript words not scored"));
  CHECK(has(" of 1 right | later chunks (1 s): ") && has(" of 4 right\n"));
  CHECK(has("4.0-5.0 s: said ") && has("\", transcript \"red\"\n") && count_lines_with("transcript \"blue\"") == 1);
  CHECK(run("%s %s --check=%s --quiet --fix_last_word=false", bin, MODEL, tmp_path("check.jsonl")) == 0);
  CHECK(has(" of 8 seconds of 1 samples") && has(" of 5 right\n") && count_lines_with("transcript \"blue\"") == 2);
}

static void test_bad_inputs(const char *bin, const char *video) {
  CHECK(run("%s %s --video=%s --start=100", bin, MODEL, video) == 1);
  CHECK(has("livecc-stream: error: ") && has(video) && has("no frame ends inside [100.000 s, the end]"));

  const char *junk = tmp_path("junk.mp4");
  write_text(junk, "this is not a video file at all");
  CHECK(run("%s %s --video=%s", bin, MODEL, junk) == 1);
  CHECK(has(junk) && count_lines_with("livecc-stream: error: ") == 1);

  CHECK(run("%s %s --video=%s", bin, MODEL, tmp_path("missing.mp4")) == 1);
  CHECK(has("missing.mp4") && has("No such file"));

  CHECK(run("%s --model=tests/fixtures/tiny_b --init=tests/fixtures/tiny_b --tokenizer=%s --video=%s", bin,
            tmp_path("no-tokenizer"), video) == 1);
  CHECK(has("livecc-stream: error: tokenizer: ") && has("no-tokenizer: No such file"));

  // a run's checkpoints directory whose latest checkpoint has format version 99
  char dir[1200];
  snprintf(dir, sizeof dir, "%s", tmp_path("ckpts"));
  mkdir(dir, 0755);
  mkdir(tmp_path("ckpts/step-00000001"), 0755);
  write_text(tmp_path("ckpts/latest"), "step-00000001\n");
  write_text(tmp_path("ckpts/step-00000001/state.json"), "{\"format\": \"livecc-checkpoint\", \"version\": 99, \"step\": 1}\n");
  CHECK(run("%s --model=tests/fixtures/tiny_b --init=%s --tokenizer=configs/tokenizer/tiny --video=%s", bin, dir, video) == 1);
  CHECK(has("step-00000001/state.json: checkpoint format version 99 is not supported (this build reads version 1)"));

  CHECK(run("%s %s --video=%s --end=2", bin, MODEL, video) == 1);
  CHECK(has("the window holds 4 frames at 2 fps; the first chunk needs 6 (3 s)"));
}

// ---- multiple choice ----

typedef struct {
  const char *video;
  double start, end;
  const char *question;
  const char *options[4];
  int n_options;
} question;

static const question QUESTIONS[] = {
    {"clip.mp4", 0, 4, "Which shape comes first?", {"A. a star", "B. a ring", "C. a cross"}, 3},
    {"clip.mp4", 2, 8, "What colour is the background?", {"A. grey", "B. blue"}, 2},
    {"clip.mp4", 1, 6, "How many shapes?", {"A. one", "B. two", "C. three", "D. four"}, 4},
};
enum { N_Q = sizeof QUESTIONS / sizeof QUESTIONS[0] };

// The letter the model prefers for question q, from the prompt written out in full; the option letters'
// logits as livecc-eval prints them into logits_text.
static int expected_letter(lcc_model *m, const lcc_tokenizer *tk, const question *q, const char *video,
                           char *logits_text, size_t cap) {
  lcc_video_budget b;
  lcc_video_budget_default(&b);
  b.min_pixels = 3136;
  lcc_frames f;
  LCC_CHECK(lcc_video_read_uniform(video, q->start, q->end, &b, &f) == 0, "%s", lcc_last_error());
  const int gt = f.T / 2, gh = f.h / 14, gw = f.w / 14, pads = gt * gh * gw / 4;
  char text[8192];
  int n = snprintf(text, sizeof text, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                                      "<|vision_start|>");
  for (int i = 0; i < pads; i++) n += snprintf(text + n, sizeof text - n, "<|video_pad|>");
  n += snprintf(text + n, sizeof text - n, "<|vision_end|>%s", q->question);
  for (int k = 0; k < q->n_options; k++) n += snprintf(text + n, sizeof text - n, "\n%s", q->options[k]);
  n += snprintf(text + n, sizeof text - n, "\nPlease select the correct answer.<|im_end|>\n<|im_start|>assistant\nAnswer:");
  lcc_tok_scratch *ts = lcc_tok_scratch_new();
  lcc_ids ids = {0};
  LCC_CHECK(lcc_tokenizer_encode(tk, ts, text, (size_t)n, &ids) == 0, "%s", lcc_last_error());
  float *rows = lcc_malloc((size_t)gt * gh * gw * 1176 * sizeof(float));
  lcc_patchify(f.rgb, f.T, f.h, f.w, 14, 2, 2, lcc_clip_mean, lcc_clip_std, rows);
  lcc_infer ctx;
  LCC_CHECK(lcc_infer_init(&ctx, m, ids.n) == 0, "%s", lcc_last_error());
  lcc_vision_item item = {LCC_VIDEO, gt, gh, gw};
  LCC_CHECK(lcc_infer_append(&ctx, ids.ids, ids.n, &item, 1, rows, gt * gh * gw) == 0, "%s", lcc_last_error());
  int best = 0;
  float best_logit = 0;
  size_t len = (size_t)snprintf(logits_text, cap, "| logits");
  for (int k = 0; k < q->n_options; k++) {
    char piece[4] = {(char)0xC4, (char)0xA0, (char)('A' + k), 0};   // " A" in byte-level form
    int32_t id = lcc_tokenizer_id(tk, piece);
    LCC_CHECK(id >= 0, "no token for \" %c\"", 'A' + k);
    if (k == 0 || ctx.logits[id] > best_logit) best = k, best_logit = ctx.logits[id];
    len += (size_t)snprintf(logits_text + len, cap - len, " %c %.4f", 'A' + k, ctx.logits[id]);
  }
  lcc_infer_free(&ctx);
  free(rows);
  lcc_ids_free(&ids);
  lcc_tok_scratch_free(ts);
  lcc_frames_free(&f);
  return 'A' + best;
}

static void test_mcq(const char *eval, const char *video) {
  FILE *f = fopen(tmp_path("questions.jsonl"), "w");
  LCC_CHECK(f, "cannot write questions.jsonl");
  for (int i = 0; i < N_Q; i++) {
    const question *q = &QUESTIONS[i];
    fprintf(f, "{\"video\": \"%s\", \"video_start\": %g, \"video_end\": %g, \"question\": \"%s\", \"options\": [", q->video,
            q->start, q->end, q->question);
    for (int k = 0; k < q->n_options; k++) fprintf(f, "%s\"%s\"", k ? ", " : "", q->options[k]);
    fprintf(f, "], \"answer\": \"B\"}\n");
  }
  fclose(f);
  CHECK(run("%s %s --mcq=%s", eval, MODEL, tmp_path("questions.jsonl")) == 0);
  lcc_config cfg;
  LCC_CHECK(lcc_config_load(&cfg, "tests/fixtures/tiny_b") == 0, "%s", lcc_last_error());
  lcc_backend *be = lcc_cpu_backend(0);
  lcc_model m;
  LCC_CHECK(lcc_model_create(&m, &cfg, be, "") == 0 && lcc_model_load_hf(&m, "tests/fixtures/tiny_b") == 0, "%s", lcc_last_error());
  lcc_tokenizer *tk = lcc_tokenizer_load("configs/tokenizer/tiny");
  LCC_CHECK(tk, "%s", lcc_last_error());
  int right = 0;
  for (int i = 0; i < N_Q; i++) {
    char logits[256], line[512];
    int want = expected_letter(&m, tk, &QUESTIONS[i], video, logits, sizeof logits);
    snprintf(line, sizeof line, "questions.jsonl:%d: predicted %c, answer B %s\n", i + 1, want, logits);
    CHECK(has(line));
    right += want == 'B';
  }
  char acc[128];
  snprintf(acc, sizeof acc, "multiple-choice accuracy %.2f%% (%d of %d questions)", 100.0 * right / N_Q, right, N_Q);
  CHECK(has(acc));
  printf("multiple choice: livecc-eval's letters equal the argmax of lcc_infer's logits for %d questions\n", N_Q);

  write_text(tmp_path("bad.jsonl"),   // an answer that is not an option letter
             "{\"video\": \"clip.mp4\", \"question\": \"?\", \"options\": [\"A. x\", \"B. y\"], \"answer\": \"C\"}\n");
  CHECK(run("%s %s --mcq=%s", eval, MODEL, tmp_path("bad.jsonl")) == 1);
  CHECK(has("bad.jsonl:1: \"answer\" must be one of the option letters A..B"));
  lcc_tokenizer_free(tk);
  lcc_model_destroy(&m);
  be->destroy(be);
}

int main(int argc, char **argv) {
  LCC_CHECK(argc == 3, "usage: test_stream_cli LIVECC_STREAM LIVECC_EVAL");
  test_tmpdir_init();
  char video[1200];
  snprintf(video, sizeof video, "%s", tmp_path("clip.mp4"));
  write_test_video(video, 56, 56, 8, 8 * 8, 2);   // 8 s at 8 fps
  test_stream_program(argv[1], video);
  test_bad_inputs(argv[1], video);
  test_mcq(argv[2], video);
  return test_finish("test_stream_cli");
}
