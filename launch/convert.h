// livecc-convert: a training checkpoint, a run's checkpoints directory, an HF Qwen2-VL folder or a GGUF pair
// in; an HF Qwen2-VL folder (transformers, vLLM) or a GGUF pair (llama.cpp: text model + mmproj) out.
//   convert.c       inputs, the tokenizer, the flow
//   convert_hf.c    the non-weight files of an HF folder (tokenizer, processor, generation config)
//   convert_gguf.c  model <-> GGUF (QWEN2VL.md section 5)
#ifndef LCC_CONVERT_H
#define LCC_CONVERT_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "gguf.h"
#include "json.h"
#include "model.h"
#include "runconfig.h"

typedef struct {
  char input[LCC_OPT_STR], output[LCC_OPT_STR], format[LCC_OPT_STR], dtype[LCC_OPT_STR];
  char tokenizer[LCC_OPT_STR], mmproj[LCC_OPT_STR], name[LCC_OPT_STR];
  int shard_mb, untie, threads;
} lcc_convert_opts;

extern const lcc_opt lcc_convert_opt_table[];
extern const int lcc_convert_opt_count;

// Runs one conversion; progress lines go to log. Returns 0, or -1 with lcc_error().
int lcc_convert(const lcc_convert_opts *o, FILE *log);

// ---- shared by the pieces ----

// Image processor settings (Qwen2VLImageProcessor); defaults are Qwen2-VL-7B-Instruct's.
typedef struct {
  double mean[3], std[3];
  int64_t min_pixels, max_pixels;
} lcc_preproc;
void lcc_preproc_default(lcc_preproc *pp);

enum { LCC_TOK_VOCAB = 1, LCC_TOK_ADDED = 2, LCC_TOK_SPECIAL = 4 };   // in model.vocab; an added token; special

// tokenizer.json, read for what the exports need: the token string of every id, the merges, the added
// tokens. Kept as the parsed document (strings point into it).
typedef struct {
  char path[2 * LCC_OPT_STR];
  lcc_json_doc *doc;
  int size;               // 1 + largest id (vocabulary and added tokens)
  const char **token;     // [size] token string (byte-level form) of each id, NULL for an unused id
  unsigned char *kind;    // [size] LCC_TOK_* bits; 0 for an unused id
  const lcc_json *added_tokens;   // the "added_tokens" array, as written in the file
  int n_merges;
  char **merges;          // [n_merges] "left right"
  int32_t endoftext, im_end;      // ids of <|endoftext|> and <|im_end|>
} lcc_tok_files;

int lcc_tok_files_load(lcc_tok_files *t, const char *path);
void lcc_tok_files_free(lcc_tok_files *t);
// Does the tokenizer belong to this model (vocabulary size, vision token ids)? 0, or -1 with lcc_error().
int lcc_tok_files_check(const lcc_tok_files *t, const lcc_config *cfg);

extern const char lcc_qwen2vl_chat_template[];   // QWEN2VL.md section 3, verbatim

// Every file of an HF folder except the weights and config.json: generation_config.json,
// preprocessor_config.json, tokenizer.json (copied), tokenizer_config.json, chat_template.json, vocab.json,
// merges.txt.
int lcc_write_hf_files(const char *dir, const lcc_config *cfg, const lcc_tok_files *tok, const lcc_preproc *pp);

// GGUF: model-<dtype>.gguf (arch qwen2vl) and mmproj-<dtype>.gguf (arch clip, projector qwen2vl_merger).
// type: a ggml type (F32, F16, BF16, Q8_0) for the matrices; norms, biases stay F32 as llama.cpp wants.
int lcc_write_gguf(const lcc_model *m, const lcc_tok_files *tok, const lcc_preproc *pp, int type, const char *name,
                   const char *text_path, const char *mmproj_path);

// The reverse: the config (and processor settings) from the metadata of both files, then the weights into a
// model created from that config. untie: without output.weight, write an untied model whose lm_head is a
// copy of token_embd (otherwise tie_word_embeddings is set).
typedef struct {
  const char *text_path, *mmproj_path;
  lcc_gguf_file *text, *mmproj;
} lcc_gguf_pair;
int lcc_gguf_pair_open(lcc_gguf_pair *p, const char *text_path, const char *mmproj_path);
void lcc_gguf_pair_close(lcc_gguf_pair *p);
int lcc_gguf_read_config(const lcc_gguf_pair *p, int untie, lcc_config *cfg, lcc_preproc *pp);
int lcc_gguf_read_weights(const lcc_gguf_pair *p, lcc_model *m);
// The GGUF vocabulary must be the tokenizer's (for ids the tokenizer has).
int lcc_gguf_check_vocab(const lcc_gguf_pair *p, const lcc_tok_files *tok);

#endif
