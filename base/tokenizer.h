// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json, configured as Qwen2's: added (special)
// tokens matched first, NFC normalization, the Qwen2 split pattern (QWEN2VL.md section 3), the GPT-2
// byte-to-unicode map, ranked merges. Encode and decode; ids identical to HF `tokenizers`.
//
// A loaded tokenizer is immutable: any number of threads may encode with it at once, each with its own
// lcc_tok_scratch (which grows once and is then reused: no allocation per token in the hot loop).
#ifndef LCC_TOKENIZER_H
#define LCC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct lcc_tokenizer lcc_tokenizer;

typedef struct {      // growable id list
  int32_t *ids;
  int n, cap;
} lcc_ids;

typedef struct lcc_tok_scratch lcc_tok_scratch;   // per-thread work buffers

// path: a tokenizer.json file or a directory holding one. NULL with lcc_error() naming the file and the
// key that is missing or unsupported (only the Qwen2 configuration is accepted: model BPE, byte-level).
lcc_tokenizer *lcc_tokenizer_load(const char *path);
void lcc_tokenizer_free(lcc_tokenizer *tk);

lcc_tok_scratch *lcc_tok_scratch_new(void);
void lcc_tok_scratch_free(lcc_tok_scratch *s);

// Appends the ids of UTF-8 text[0..len) to out. Added tokens (e.g. <|im_start|>) inside the text are
// recognized as such. The text must be valid UTF-8 (JSON strings are). Returns 0, or -1 with lcc_error()
// (invalid UTF-8, or a byte no token covers).
int lcc_tokenizer_encode(const lcc_tokenizer *tk, lcc_tok_scratch *s, const char *text, size_t len, lcc_ids *out);
// UTF-8 text of ids; skip_special drops added special tokens. Returns the length written (NUL-terminated,
// truncated to cap - 1), or -1 with lcc_error() for an id outside the vocabulary.
long lcc_tokenizer_decode(const lcc_tokenizer *tk, const int32_t *ids, int n, int skip_special, char *out, size_t cap);

int32_t lcc_tokenizer_id(const lcc_tokenizer *tk, const char *token);   // id of a token string, -1 if none
const char *lcc_tokenizer_token(const lcc_tokenizer *tk, int32_t id);  // its string (byte-level form), NULL if none
int lcc_tokenizer_vocab_size(const lcc_tokenizer *tk);                 // 1 + largest id
uint64_t lcc_tokenizer_hash(const lcc_tokenizer *tk);                  // hash of vocab, merges, added tokens

void lcc_ids_push(lcc_ids *l, int32_t id);
void lcc_ids_free(lcc_ids *l);

#endif
