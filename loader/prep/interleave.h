// A parsed conversation plus its decoded pictures -> one pre-interleaved sample: token ids, loss mask and
// vision items, exactly as LiveCC's LMMDataset.getitem builds them (LIVECC.md 3.4-3.7, 3.9).
//
// Streaming sample: the clip's frames in chunks (the first 3 s = 3*fps frames, then fps frames = 1 s each);
// each chunk is its own video item and its own user turn "Time=a.b-c.ds" + video (+ the context after the
// first chunk); the assistant answers with the words that ENDED by the pts of the chunk's last frame,
// followed by " ..." (a silent second is exactly " ..."). Trailing silent pairs are dropped. The words in
// the clip window that no chunk reaches are lost, as in LiveCC, or (keep_last_words) the last chunk's.
// QA sample: its turns as they are; every video or image element is one item.
// Both are rendered with the Qwen2-VL-Instruct chat template (auto system turn, "<|im_end|>\n" after each
// turn), each pad token expanded to grid_t*(h/14)*(w/14)/4 copies; the loss mask covers every assistant
// turn's content and its <|im_end|> (LiveCC's im_start+3 .. im_end rule).
#ifndef LCC_INTERLEAVE_H
#define LCC_INTERLEAVE_H

#include <stddef.h>
#include <stdint.h>

#include "media.h"
#include "sample.h"
#include "tokenizer.h"

// Qwen2-VL's vision geometry: 14x14 patches, 2x2 merge, 2-frame temporal patch. livecc-prep, which has no
// model, prepares for it; the tools that have one (livecc-stream, livecc-eval) take the model config's.
#define LCC_QWEN2VL_PATCH 14
#define LCC_QWEN2VL_MERGE 2
#define LCC_QWEN2VL_TEMPORAL 2

typedef struct {
  double fps;               // 2: frames per second of the clip (an even whole number: chunks hold whole temporal patches)
  int with_context;         // 1: the first user turn's text gets previous ASR, else the title (LIVECC.md 3.6)
  int fix_last_word;        // 0: LiveCC's word cursor, which can repeat the last word (see lcc_bucket_words)
  int keep_last_words;      // 0: as LiveCC, the words in the clip window from the first one that ends after the
                            // last chunk's last frame on are lost; 1: they are appended to the last chunk's answer
  const char *system_prompt;  // text of the auto system turn; "" leaves it out
  int max_seq_len;          // tokens; 0 = no limit
  int overlong_skip;        // 1: skip an over-long sample; 0: cut it at the last turn boundary that fits
  int patch, merge, temporal;   // the vision geometry (0: Qwen2-VL's, LCC_QWEN2VL_*)
} lcc_interleave_opts;

typedef struct {
  lcc_interleave_opts o;
  const lcc_tokenizer *tk;
  int32_t im_start, im_end, vision_start, vision_end, image_pad, video_pad;
  int32_t assistant, newline;   // derived as LiveCC does: tokenize "<|im_start|>assistant\n<|im_end|>"
} lcc_interleaver;

typedef struct {
  int kind;                 // LCC_IMAGE or LCC_VIDEO (model.h)
  int t, h, w;              // grid in patches
  int first_pad;            // token index of its first pad token
  int src;                  // which picture set holds its frames (the clip, or the n-th vision element)
  int frame0, n_frames;     // its frames there: 2t for a video, 1 for an image
} lcc_seq_item;

typedef struct { char *s; size_t n, cap; } lcc_str;   // growable text

typedef struct {
  lcc_ids ids;              // [ids.n] token ids
  uint8_t *mask;            // [ids.n] 1 = trained
  int mask_cap;
  int n_items, cap_items;
  lcc_seq_item *items;      // [n_items] in order of appearance
  int pairs;                // (user, assistant) pairs kept (streaming) / assistant turns kept (QA)
  int pairs_cut;            // pairs dropped to fit max_seq_len
  int words_after_last_frame;   // words inside the clip window that no chunk's bucketing reached (lost, or
                                // appended to the last chunk with keep_last_words)
  // work space, reused across samples
  lcc_str piece, phrase, word;
  int n_bounds, cap_bounds;
  struct lcc_bound { int tokens, items, silent; } *bounds;   // after each assistant turn
} lcc_seq;

// Resolves the special tokens. -1 with lcc_error() when the tokenizer lacks one of them or "assistant"
// and "\n" are not single tokens.
int lcc_interleaver_init(lcc_interleaver *it, const lcc_tokenizer *tk, const lcc_interleave_opts *o);

// Streaming sample: clip = its strict-fps frames (T even, h and w multiples of 28, pts = end times). Every
// word of c->words goes to the cursor, as in LiveCC; words outside the clip window (lcc_conv_word_outside)
// are neither counted in words_after_last_frame nor appended with keep_last_words.
// QA sample: pics[k] = the pictures of its k-th video or image element, in order.
// Returns 0, or an LCC_SKIP_* reason with lcc_error() (`what` names the sample).
int lcc_interleave_stream(const lcc_interleaver *it, lcc_tok_scratch *ts, const lcc_conv *c, const lcc_frames *clip,
                          const char *what, lcc_seq *out);
int lcc_interleave_qa(const lcc_interleaver *it, lcc_tok_scratch *ts, const lcc_conv *c, const lcc_frames *pics,
                      const char *what, lcc_seq *out);
void lcc_seq_free(lcc_seq *s);

// LiveCC's get_phrase_before_timestamp (LIVECC.md 3.4): from word *cursor on, takes words while
// t >= word.end and stops at the first word that ends after t; appends ' ' + word.strip() for each and
// strips the result (Python's str.strip: Unicode whitespace). *cursor becomes the index of the last word
// examined: the stopping word, or, when every remaining word was taken, the last word itself, which every
// later call then takes again: the last word repeats in every remaining window (LiveCC's edge case,
// reproduced by default). fix_last_word = 1 moves the cursor past the last word instead. Returns the
// number of words taken.
int lcc_bucket_words(const lcc_word *w, int n, double t, int *cursor, int fix_last_word, lcc_str *phrase);

#endif
