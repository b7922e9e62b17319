// Real-time commentary on a video with the KV cache (LIVECC.md 8): the clip's frames arrive at 2 fps; the
// first 3 s (6 frames) form the first chunk, then every second (2 frames) is one more chunk. Each chunk is a
// user turn "Time=a-b s" + its frames as one video item (+ the query, first chunk only), rendered with the
// chat template and the generation prompt "<|im_start|>assistant\n"; the model then says up to
// max_new_tokens tokens (greedy, HF repetition penalty), stopping at <|im_end|>. The last generated token
// never enters the cache (as in HF generate), so every later chunk starts with "<|im_end|>\n" to close the
// previous answer, and has no system turn. Only the new chunk's tokens run through the model: the context
// before it stays in the cache.
// Times in "Time=" are relative to the clip's first frame, nominal (0.0-3.0, 3.0-4.0, ...), as training
// renders them and as LiveCC's evaluation path sends them.
// Eviction (the paper drops visual tokens older than 240 s): a chunk's pad tokens leave the cache and every
// other token keeps its position. The no-cache baseline runs the context without them, so there positions
// close up (the paper's re-prefill); without eviction the two give the same tokens.
#ifndef LCC_STREAM_H
#define LCC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "infer.h"
#include "interleave.h"
#include "media.h"
#include "tokenizer.h"

typedef struct lcc_stream_chunk lcc_stream_chunk;

typedef struct {
  double fps;                  // 2: frames per second of the clip (an even whole number)
  const char *system_prompt;   // "You are a helpful assistant." (the template's default); "" leaves it out
  int max_new_tokens;          // 16
  double repetition_penalty;   // 1.15; 1 = off
  double evict_after;          // seconds: a chunk's visual tokens leave the cache this long after it (0 = never)
  int no_cache;                // 1: run the whole context again every second (the baseline without a KV cache)
  int realtime;                // 1: wait for the wall clock to reach each chunk's end before processing it
  // called after every chunk (may be NULL), e.g. to print it as it comes
  void (*on_chunk)(void *ctx, const lcc_stream_chunk *c);
  void *ctx;
} lcc_stream_opts;

void lcc_stream_opts_default(lcc_stream_opts *o);

// What one chunk gave and cost.
struct lcc_stream_chunk {
  int index;                 // 0 = the first (3 s) chunk
  double t0, t1;             // clip-relative seconds it covers (its "Time=" text)
  double pts;                // absolute end time of its last frame (seconds of the source video)
  int32_t *ids;              // [n_ids] generated tokens, the stop token (<|im_end|>) included when it came
  int n_ids;
  char *text;                // the generated text without special tokens (" ..." kept)
  int prompt_tokens;         // tokens of its prompt
  int prefill_tokens;        // tokens run through the model before generating (the whole context with no_cache)
  int evicted_tokens;        // visual tokens evicted from the context before it
  int context_tokens;        // tokens in the context after it
  double prefill_s, decode_s, latency_s;   // wall seconds: prompt (patchify, vision, prefill), generation, both
};

typedef struct {
  int n;                     // chunks
  lcc_stream_chunk *chunks;  // [n]
  double wall_s;             // processing time of the whole clip (waits of realtime mode excluded)
} lcc_stream_result;

void lcc_stream_result_free(lcc_stream_result *r);

// A live vision item of the context (needed for eviction and for the no-cache baseline).
typedef struct {
  lcc_vision_item item;
  int first_pad, n_pads;     // its pad tokens in the context
  double t1;                 // clip-relative end of its chunk
} lcc_stream_item;

typedef struct {
  lcc_stream_opts o;
  lcc_model *m;
  const lcc_tokenizer *tk;
  lcc_interleaver first, later;   // the chat template with and without the system turn
  lcc_tok_scratch *ts;
  lcc_seq seq;                    // the chat template's rendering of a chunk's user turn
  lcc_ids prompt;                 // [prompt.n] a chunk's prompt (lcc_stream_prompt)
  lcc_vision_item prompt_item;    // its video item
  int prompt_pad;                 // index of its first pad token in prompt
  int32_t ellipsis;               // " ..." (the end-of-second token)
  lcc_infer ctx;                  // the KV-cached context
  int n_items, cap_items;
  lcc_stream_item *items;         // [n_items] vision items in the context, in order
  float *pixels;                  // [kept_rows, patch_dim] patch rows of the live items, in order (no-cache baseline)
  size_t kept_rows, cap_rows;
  uint8_t *seen;                  // [vocab] token ids present in the context (repetition penalty)
  uint8_t *banned;                // [vocab] ids never generated: pad tokens (a pad without its picture cannot
                                  // enter the context) and ids the tokenizer lacks (the model's padded vocabulary)
} lcc_streamer;

// The model and tokenizer stay owned by the caller. Returns 0, or -1 with lcc_error() (a tokenizer without
// the chat template's special tokens).
int lcc_streamer_init(lcc_streamer *s, lcc_model *m, const lcc_tokenizer *tk, const lcc_stream_opts *o);
void lcc_streamer_free(lcc_streamer *s);

// The prompt of chunk k of a clip: frames [f0, f0 + nf) of clip, times t0-t1 (clip-relative seconds), the
// query after the video on the first chunk: ids into s->prompt, its video item into s->prompt_item.
// Returns 0, or -1 with lcc_error() (text the tokenizer rejects).
int lcc_stream_prompt(lcc_streamer *s, int k, const lcc_frames *clip, int f0, int nf, double t0, double t1,
                      const char *query);

// Streams a whole clip (frames at o.fps, e.g. from lcc_video_read_strict; T >= 3 * fps). Every chunk is
// in r (free with lcc_stream_result_free). Returns 0, or -1 with lcc_error().
int lcc_stream_clip(lcc_streamer *s, const lcc_frames *clip, const char *query, lcc_stream_result *r);

// The generated text of a chunk without the trailing " ..." (end of second) and surrounding spaces, into out.
void lcc_stream_words(const char *text, char *out, size_t cap);

// Scores the first chunk's three seconds: the words said for the chunk (as lcc_stream_words gives them) are
// aligned to the transcript's (a word-level edit distance); a second is right when each of its words is
// matched in order and nothing extra is said within it (words said where the transcript has none count
// against the second they precede, or the last second). ref[s]: second s's transcript words (NULL = none).
// Returns the seconds named right, 0 to 3.
int lcc_stream_seconds_right(const char *said, const char *const ref[3]);

// Weights to load for `init`: a run's checkpoints directory (with a `latest` file) means its latest
// checkpoint; a checkpoint (a directory with state.json) must be of a format version this build reads;
// anything else (an HF folder, a .safetensors file) is taken as it is. Returns 0, or -1 with lcc_error().
int lcc_resolve_weights(const char *init, char *out, size_t cap);

#endif
