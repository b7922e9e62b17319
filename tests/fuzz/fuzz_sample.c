// libFuzzer target: any byte string as one LiveCC JSONL line through the sample parser, then, for a parsed
// conversation, the whole text path over synthetic pictures: word filtering, bucketing, the chat template,
// the tiny tokenizer, the loss mask, and a max_seq_len cut.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interleave.h"
#include "model.h"
#include "sample.h"
#include "util.h"

static lcc_tokenizer *tk;
static lcc_tok_scratch *ts;
static lcc_interleaver il[2];   // no limit; a small max_seq_len (cut)
static lcc_seq seq;
static double pts[16];          // [16] end times of the synthetic clip: 0.5 s apart
static lcc_frames pics[64];     // 28x28 pictures: 2 frames each (videos use both, images one)
static volatile size_t sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  tk = lcc_tokenizer_load(LCC_TINY_TOKENIZER);
  LCC_CHECK(tk, "%s", lcc_last_error());
  ts = lcc_tok_scratch_new();
  lcc_interleave_opts o = {.fps = 2, .with_context = 1, .system_prompt = "You are a helpful assistant."};
  LCC_CHECK(lcc_interleaver_init(&il[0], tk, &o) == 0, "%s", lcc_last_error());
  o.max_seq_len = 120, o.with_context = 0;
  LCC_CHECK(lcc_interleaver_init(&il[1], tk, &o) == 0, "%s", lcc_last_error());
  for (int i = 0; i < 64; i++) pics[i] = (lcc_frames){.T = 2, .h = 28, .w = 28, .pts = pts};
  return 0;
}

// Touches every string so ASan sees a bad pointer or length.
static size_t touch(const char *s, size_t n) {
  size_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += (unsigned char)s[i];
  if (s[n] != 0) __builtin_trap();
  return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lcc_conv c;
  int json_error;
  if (lcc_conv_parse((const char *)data, size, "fuzz.jsonl:1", &c, &json_error)) return 0;
  size_t sum = 0;
  int vision = 0;
  for (int e = 0; e < c.n_elems; e++) {
    const lcc_elem *el = &c.elems[e];
    sum += touch(el->text, el->text_len);
    if (el->title) sum += touch(el->title, el->title_len);
    if (el->previous) sum += touch(el->previous, el->previous_len);
    vision += el->kind != LCC_ELEM_TEXT;
  }
  for (int w = 0; w < c.n_words; w++) sum += touch(c.words[w].word, c.words[w].len);
  if (c.stream) {
    double start = c.elems[c.turns[0].first].start;
    for (int i = 0; i < 16; i++) pts[i] = start + 0.5 * i;
    lcc_conv_drop_words_outside(&c);
    lcc_frames clip = {.T = 16, .h = 28, .w = 28, .pts = pts};
    for (int k = 0; k < 2; k++) lcc_interleave_stream(&il[k], ts, &c, &clip, "fuzz.jsonl:1", &seq);
  } else if (vision <= 64) {
    for (int k = 0; k < 2; k++) lcc_interleave_qa(&il[k], ts, &c, pics, "fuzz.jsonl:1", &seq);
  }
  lcc_conv_free(&c);
  sink += sum;
  return 0;
}
