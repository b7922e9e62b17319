// QA samples (LIVECC.md 2.4, 3.9): a video + question + answer, an image + question + answer (plain-string
// content), and a multi-turn text conversation with its own system message render with the Qwen2-VL chat
// template as expected: video first, pads per grid, every assistant turn trained, no auto system turn when
// the conversation has one.
// The video: testsrc2 112x84 at 4 fps, 4 s = 16 frames; uniform sampling takes 16 / 4 * 2 = 8 frames
// (linspace over the 16), so grid (4, 6, 8): 4*6*8/4 = 48 pads. The image: 56x56 = 3136 px = the image
// minimum, kept: grid (1, 4, 4), 4 pads.
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "prep_util.h"
#include "testlib.h"
#include "tokenizer.h"
#include "util.h"

static const char *LINES =
    "[{\"role\": \"user\", \"content\": [{\"type\": \"video\", \"video\": \"qa.mp4\"}, {\"type\": \"text\", \"text\": "
    "\"What moves?\"}]}, {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"A red circle.\"}]}]\n"
    "[{\"role\": \"user\", \"content\": [{\"type\": \"image\", \"image\": \"qa.png\"}, {\"type\": \"text\", \"text\": "
    "\"Which shape?\"}]}, {\"role\": \"assistant\", \"content\": \"A square.\"}]\n"
    "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}, "
    "{\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", "
    "\"text\": \"Colour?\"}]}, {\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"Red.\"}]}]\n";

static lcc_tokenizer *tk;
static lcc_tok_scratch *ts;
static lcc_ids want;
static uint8_t want_mask[4096];
static int first_pad;

static void S(const char *name, int trained) {
  lcc_ids_push(&want, lcc_tokenizer_id(tk, name));
  want_mask[want.n - 1] = (uint8_t)trained;
}

static void T(const char *text, int trained) {
  int from = want.n;
  LCC_CHECK(lcc_tokenizer_encode(tk, ts, text, strlen(text), &want) == 0, "%s", lcc_last_error());
  for (int i = from; i < want.n; i++) want_mask[i] = (uint8_t)trained;
}

static void pads(const char *pad, int n) {
  S("<|vision_start|>", 0);
  first_pad = want.n;
  for (int i = 0; i < n; i++) S(pad, 0);
  S("<|vision_end|>", 0);
}

static void turn(const char *role, const char *text, int trained) {
  S("<|im_start|>", 0), T(role, 0), T("\n", 0), T(text, trained), S("<|im_end|>", trained), T("\n", 0);
}

static void system_turn(void) { turn("system", "You are a helpful assistant.", 0); }

static void expect_tokens(const lcc_sample *s, const char *name) {
  int same = s->n_tokens == want.n;
  for (int i = 0; same && i < want.n; i++) same = s->ids[i] == want.ids[i] && s->mask[i] == want_mask[i];
  CHECKF(same, "%s: tokens or mask differ (%d tokens, want %d)", name, s->n_tokens, want.n);
}

int main(void) {
  tk = lcc_tokenizer_load(TINY_TOKENIZER);
  LCC_CHECK(tk, "%s", lcc_last_error());
  ts = lcc_tok_scratch_new();
  const char *dir = test_fresh_dir("qa");
  char path[1200], jsonl[1200], out[1200], shard[1300];
  pu_path(path, sizeof path, dir, "qa.mp4");
  pu_video(path, 112, 84, 4, 4);
  pu_path(path, sizeof path, dir, "qa.png");
  pu_image(path, 56, 56);
  pu_path(jsonl, sizeof jsonl, dir, "qa.jsonl");
  write_text(jsonl, LINES);
  pu_path(out, sizeof out, dir, "out");
  pu_path(shard, sizeof shard, out, "shard-00000.h5");

  lcc_prep_opts o;
  const char *inputs[] = {jsonl};
  pu_opts(&o, inputs, 1, out);
  o.il.with_context = 0;   // sft
  lcc_prep_stats st;
  int rc = pu_run(&o, &st, dir);
  if (rc) fprintf(stderr, "%s\n", lcc_last_error());
  CHECK(rc == 0 && st.samples_in == 3 && st.written == 3);

  lcc_sample s;
  // 1: video + question + answer.
  want.n = 0;
  system_turn();
  S("<|im_start|>", 0), T("user\n", 0), pads("<|video_pad|>", 48), T("What moves?", 0), S("<|im_end|>", 0), T("\n", 0);
  turn("assistant", "A red circle.", 1);
  pu_shard_sample(shard, 0, &s);
  expect_tokens(&s, "video QA");
  CHECK(s.n_items == 1 && s.items[0].kind == LCC_VIDEO && s.items[0].t == 4 && s.items[0].h == 6 && s.items[0].w == 8 &&
        s.items[0].first_pad == first_pad && s.n_frames == 8);
  lcc_sample_free(&s);

  // 2: image + question + answer (string content).
  want.n = 0;
  system_turn();
  S("<|im_start|>", 0), T("user\n", 0), pads("<|image_pad|>", 4), T("Which shape?", 0), S("<|im_end|>", 0), T("\n", 0);
  turn("assistant", "A square.", 1);
  pu_shard_sample(shard, 1, &s);
  expect_tokens(&s, "image QA");
  CHECK(s.n_items == 1 && s.items[0].kind == LCC_IMAGE && s.items[0].t == 1 && s.items[0].h == 4 && s.items[0].w == 4 &&
        s.items[0].first_pad == first_pad && s.n_frames == 1);
  lcc_sample_free(&s);

  // 3: its own system message, two assistant turns.
  want.n = 0;
  turn("system", "Be brief.", 0), turn("user", "Hi", 0), turn("assistant", "Hello.", 1);
  turn("user", "Colour?", 0), turn("assistant", "Red.", 1);
  pu_shard_sample(shard, 2, &s);
  expect_tokens(&s, "multi-turn text");
  CHECK(s.n_items == 0 && s.n_frames == 0 && s.source_line == 3);
  lcc_sample_free(&s);

  // video_root: relative paths resolve under it instead of the JSONL file's directory.
  char sub[1200], sub_jsonl[1300], sub_out[1300], cmd[4000];
  pu_path(sub, sizeof sub, dir, "sub");
  pu_path(sub_jsonl, sizeof sub_jsonl, sub, "qa.jsonl");
  pu_path(sub_out, sizeof sub_out, sub, "out");
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s'", sub, jsonl, sub_jsonl);
  CHECK(system(cmd) == 0);
  const char *sub_inputs[] = {sub_jsonl};
  pu_opts(&o, sub_inputs, 1, sub_out);
  CHECK(pu_run(&o, &st, dir) == 0 && st.written == 1 && st.skipped[LCC_SKIP_MISSING_MEDIA] == 2);
  o.video_root = dir;
  pu_path(sub_out, sizeof sub_out, sub, "out_root");
  CHECK(pu_run(&o, &st, dir) == 0 && st.written == 3);

  lcc_ids_free(&want);
  lcc_tok_scratch_free(ts);
  lcc_tokenizer_free(tk);
  return test_finish("test_prep_qa");
}
