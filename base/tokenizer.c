// Qwen2's byte-level BPE, read from a Hugging Face tokenizer.json and equal to HF `tokenizers` 0.21 on it.
//
// encode(text):  1. added tokens: leftmost-longest matches of the non-normalized added tokens cut the text
//                   into pieces (the matches become their ids);
//                2. each other piece: NFC, then the normalized added tokens (if any) the same way;
//                3. the Qwen2 split pattern (match_at: a hand-written matcher of the regex) cuts it into words;
//                4. each word's bytes map to the byte tokens and ranked merges join them (bpe_word), lowest
//                   rank first and leftmost among equal ranks, as HF's BPE does.
// decode(ids):   the ByteLevel decoder: each token's characters map back to bytes, and the bytes are read
//                as UTF-8 with each ill-formed part replaced by U+FFFD (Rust's from_utf8_lossy).
//
// The loaded tokenizer is read-only; the per-thread scratch owns every buffer the encoder writes.
// Unicode data (unicode_tables.c) is Python's, 14.0. HF's differs only on characters assigned after 14.0
// (letters and digits to HF's regex) and on 99 characters of Unicode 10-14 (HF's NFC data is older): see
// tests/reference/make_tokenizer_fixtures.py.
#include "tokenizer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "unicode.h"
#include "util.h"

// The pre-tokenizer pattern of Qwen2 (QWEN2VL.md section 3), the only one match_at implements.
static const char QWEN2_PATTERN[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                                    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#define MAX_IDS (1 << 24)        // ids beyond are rejected (they would size the id tables)
#define EMPTY_KEY UINT64_MAX
#define N_BYTE_CHARS 324         // the byte characters lie in U+0021..U+0143

enum { TOK_NONE, TOK_VOCAB, TOK_ADDED, TOK_SPECIAL };   // what an id is

typedef struct { uint64_t key; int32_t rank, id; } merge_slot;   // key = left id << 32 | right id

typedef struct { uint32_t off, len; int32_t id; } added_pat;     // pattern = tk->pats[off .. off+len)
typedef struct {
  added_pat *p;        // [n] longest first
  int n;
  uint8_t first[256];  // 1 for bytes that start a pattern
} added_set;

struct lcc_tokenizer {
  char *path;             // the tokenizer.json read
  int n_ids;              // 1 + largest id
  uint8_t *kind;          // [n_ids] TOK_*
  char *text;             // token strings back to back, each NUL-terminated: byte-level form or added content
  uint32_t *text_off;     // [n_ids + 1] string of id = text + text_off[id] (empty range for unused ids)
  uint8_t *bytes;         // decoded bytes of every token back to back
  uint32_t *bytes_off;    // [n_ids + 1]
  int32_t *str_slots;     // [str_mask + 1] open addressing: token string -> id, -1 when free
  uint32_t str_mask;
  merge_slot *merges;     // [merge_mask + 1] open addressing: (left, right) -> rank and merged id
  uint32_t merge_mask;
  int32_t byte_id[256];   // id of the token of each single byte, -1 when the vocabulary lacks it
  uint16_t byte_chr[256]; // GPT-2 byte -> character map and its inverse (-1: no byte)
  int16_t chr_byte[N_BYTE_CHARS];
  char *pats;             // added-token patterns back to back (normalized ones in NFC)
  added_set raw, norm;    // added tokens matched before / after normalization
  int nfc;                // normalizer NFC (else none)
  int ignore_merges;      // a word that is itself a token is not merged (BPE option)
  uint64_t hash;
};

// A cache of recent words' ids (per scratch, direct-mapped by a hash of the word's bytes): text repeats its
// words, and a lookup is much cheaper than BPE. Longer words, or words of more ids, are not cached.
#define CACHE_SLOTS 8192
#define CACHE_WORD 22
#define CACHE_IDS 10
typedef struct {
  uint8_t len, n;             // word length in bytes (0: empty slot), number of ids
  char word[CACHE_WORD];
  int32_t ids[CACHE_IDS];
} cache_slot;                 // 64 bytes

struct lcc_tok_scratch {
  cache_slot *cache;      // [CACHE_SLOTS]
  uint64_t cache_owner;   // hash of the tokenizer the cached ids belong to
  lcc_nfc_buf nfc;
  int32_t *sym;           // [cap_sym] token id of each symbol of the word being merged, -1 once merged away
  int32_t *prev, *next;   // [cap_sym] neighbour symbols, -1 at the ends
  uint64_t *heap;         // [3 * cap_sym] candidate merges: rank << 32 | index of the left symbol (min-heap)
  size_t cap_sym;
  char *bl;               // [2 * cap_sym] byte-level form of one word (ignore_merges lookups)
};

// ---------------------------------------------------------------------------------------------------------
// hashing

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}
#define FNV_SEED 0xCBF29CE484222325ull

static uint32_t pow2_slots(size_t n) {   // table size for n keys at a load of at most 1/2
  uint32_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

static const char *tok_str(const lcc_tokenizer *tk, int32_t id, size_t *len) {
  *len = tk->text_off[id + 1] - tk->text_off[id] - 1;
  return tk->text + tk->text_off[id];
}

// Slot of token string s in str_slots: where it is, or the free slot where it would go.
static uint32_t str_slot(const lcc_tokenizer *tk, const char *s, size_t len) {
  uint32_t i = (uint32_t)fnv1a(FNV_SEED, s, len) & tk->str_mask;
  for (;; i = (i + 1) & tk->str_mask) {
    int32_t id = tk->str_slots[i];
    size_t l;
    if (id < 0) return i;
    const char *t = tok_str(tk, id, &l);
    if (l == len && !memcmp(t, s, len)) return i;
  }
}

static int32_t str_id(const lcc_tokenizer *tk, const char *s, size_t len) {
  return tk->str_slots[str_slot(tk, s, len)];
}

static uint32_t merge_index(uint64_t key, uint32_t mask) {
  return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static const merge_slot *merge_find(const lcc_tokenizer *tk, int32_t a, int32_t b) {
  uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
  for (uint32_t i = merge_index(key, tk->merge_mask);; i = (i + 1) & tk->merge_mask) {
    const merge_slot *m = &tk->merges[i];
    if (m->key == key) return m;
    if (m->key == EMPTY_KEY) return NULL;
  }
}

// ---------------------------------------------------------------------------------------------------------
// GPT-2's byte <-> character map: printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100 onwards in byte order (so no token contains a space or a control character).

static void byte_map(uint16_t byte_chr[256], int16_t chr_byte[N_BYTE_CHARS]) {
  uint16_t next = 256;
  for (int c = 0; c < N_BYTE_CHARS; c++) chr_byte[c] = -1;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_chr[b] = keep ? (uint16_t)b : next++;
    chr_byte[byte_chr[b]] = (int16_t)b;
  }
}

// ---------------------------------------------------------------------------------------------------------
// loading

static int key_error(const lcc_tokenizer *tk, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int key_error(const lcc_tokenizer *tk, const char *key, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return lcc_error("%s: \"%s\": %s", tk->path, key, why);
}

static int is_null(const lcc_json *v) { return !v || v->type == LCC_JSON_NULL; }

static int str_is(const lcc_json *v, const char *s) { return v && v->type == LCC_JSON_STRING && !strcmp(v->str, s); }

// A boolean member (absent: dflt). -1 with an error for any other type.
static int bool_of(const lcc_tokenizer *tk, const lcc_json *obj, const char *key, const char *name, int dflt, int *out) {
  const lcc_json *v = lcc_json_get(obj, key);
  *out = dflt;
  if (!v) return 0;
  if (v->type != LCC_JSON_BOOL) return key_error(tk, name, "must be true or false");
  *out = v->boolean;
  return 0;
}

static int check_normalizer(lcc_tokenizer *tk, const lcc_json *root) {
  const lcc_json *n = lcc_json_get(root, "normalizer");
  if (is_null(n)) return 0;
  const lcc_json *type = lcc_json_get(n, "type");
  if (!str_is(type, "NFC"))
    return key_error(tk, "normalizer.type", "\"%s\" is not supported (only NFC or no normalizer)",
                     type && type->type == LCC_JSON_STRING ? type->str : "?");
  tk->nfc = 1;
  return 0;
}

// Exactly Qwen2's: Sequence [Split(pattern, Isolated, invert false), ByteLevel(no prefix space, no regex)].
static int check_pre_tokenizer(const lcc_tokenizer *tk, const lcc_json *root) {
  const lcc_json *p = lcc_json_get(root, "pre_tokenizer"), *list = lcc_json_get(p, "pretokenizers");
  if (!str_is(lcc_json_get(p, "type"), "Sequence") || !list || list->type != LCC_JSON_ARRAY || list->count != 2)
    return key_error(tk, "pre_tokenizer", "unsupported: only Qwen2's Sequence [Split, ByteLevel] is implemented");
  const lcc_json *split = lcc_json_at(list, 0), *bl = lcc_json_at(list, 1);
  if (!str_is(lcc_json_get(split, "type"), "Split"))
    return key_error(tk, "pre_tokenizer.pretokenizers[0].type", "must be \"Split\"");
  if (!str_is(lcc_json_get(lcc_json_get(split, "pattern"), "Regex"), QWEN2_PATTERN))
    return key_error(tk, "pre_tokenizer.pretokenizers[0].pattern", "unsupported: only Qwen2's regex is implemented");
  if (!str_is(lcc_json_get(split, "behavior"), "Isolated"))
    return key_error(tk, "pre_tokenizer.pretokenizers[0].behavior", "must be \"Isolated\"");
  int invert, prefix, regex;
  if (bool_of(tk, split, "invert", "pre_tokenizer.pretokenizers[0].invert", 0, &invert)) return -1;
  if (invert) return key_error(tk, "pre_tokenizer.pretokenizers[0].invert", "must be false");
  if (!str_is(lcc_json_get(bl, "type"), "ByteLevel"))
    return key_error(tk, "pre_tokenizer.pretokenizers[1].type", "must be \"ByteLevel\"");
  if (bool_of(tk, bl, "add_prefix_space", "pre_tokenizer.pretokenizers[1].add_prefix_space", 1, &prefix) ||
      bool_of(tk, bl, "use_regex", "pre_tokenizer.pretokenizers[1].use_regex", 1, &regex))
    return -1;
  if (prefix) return key_error(tk, "pre_tokenizer.pretokenizers[1].add_prefix_space", "must be false");
  if (regex) return key_error(tk, "pre_tokenizer.pretokenizers[1].use_regex", "must be false");
  return 0;
}

static int check_config(lcc_tokenizer *tk, const lcc_json *root) {
  if (root->type != LCC_JSON_OBJECT) return lcc_error("%s: not a JSON object", tk->path);
  const lcc_json *model = lcc_json_get(root, "model");
  if (!model || model->type != LCC_JSON_OBJECT) return key_error(tk, "model", "missing (or not an object)");
  const lcc_json *type = lcc_json_get(model, "type");
  if (!str_is(type, "BPE"))
    return key_error(tk, "model.type", "\"%s\" is not supported (only BPE)",
                     type && type->type == LCC_JSON_STRING ? type->str : "missing");
  const lcc_json *dropout = lcc_json_get(model, "dropout");
  if (!is_null(dropout) && !(dropout->type == LCC_JSON_NUMBER && dropout->number == 0))
    return key_error(tk, "model.dropout", "BPE dropout is not supported (must be null)");
  if (!is_null(lcc_json_get(model, "unk_token")))
    return key_error(tk, "model.unk_token", "not supported (byte-level BPE needs none; must be null)");
  static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int i = 0; i < 2; i++) {
    const lcc_json *v = lcc_json_get(model, affixes[i]);
    if (!is_null(v) && !str_is(v, "")) {
      char key[64];
      snprintf(key, sizeof key, "model.%s", affixes[i]);
      return key_error(tk, key, "not supported (must be null or \"\")");
    }
  }
  int byte_fallback;
  if (bool_of(tk, model, "byte_fallback", "model.byte_fallback", 0, &byte_fallback) ||
      bool_of(tk, model, "ignore_merges", "model.ignore_merges", 0, &tk->ignore_merges))
    return -1;
  if (byte_fallback) return key_error(tk, "model.byte_fallback", "not supported (must be false)");
  if (check_normalizer(tk, root) || check_pre_tokenizer(tk, root)) return -1;
  if (!str_is(lcc_json_get(lcc_json_get(root, "decoder"), "type"), "ByteLevel"))
    return key_error(tk, "decoder", "unsupported: only the ByteLevel decoder is implemented");
  const lcc_json *post = lcc_json_get(root, "post_processor");
  if (!is_null(post) && !str_is(lcc_json_get(post, "type"), "ByteLevel"))   // ByteLevel only adjusts offsets
    return key_error(tk, "post_processor", "unsupported (must be null or ByteLevel: encode adds no tokens)");
  if (!is_null(lcc_json_get(root, "truncation"))) return key_error(tk, "truncation", "not supported (must be null)");
  if (!is_null(lcc_json_get(root, "padding"))) return key_error(tk, "padding", "not supported (must be null)");
  return 0;
}

// One added token of tokenizer.json's "added_tokens", checked.
typedef struct { const lcc_json *content; int32_t id; int special, normalized; } added_token;

static int read_added(const lcc_tokenizer *tk, const lcc_json *t, size_t i, added_token *a) {
  char key[64];
  snprintf(key, sizeof key, "added_tokens[%zu]", i);
  const lcc_json *id = lcc_json_get(t, "id");
  a->content = lcc_json_get(t, "content");
  if (!id || !id->is_integer || id->integer < 0 || id->integer >= MAX_IDS)
    return key_error(tk, key, "\"id\" must be an integer in [0, %d)", MAX_IDS);
  if (!a->content || a->content->type != LCC_JSON_STRING || a->content->str_len == 0)
    return key_error(tk, key, "\"content\" must be a non-empty string");
  a->id = (int32_t)id->integer;
  if (bool_of(tk, t, "special", key, 0, &a->special) || bool_of(tk, t, "normalized", key, !a->special, &a->normalized))
    return -1;
  static const char *const unsupported[] = {"single_word", "lstrip", "rstrip"};
  for (int k = 0; k < 3; k++) {
    int on;
    if (bool_of(tk, t, unsupported[k], key, 0, &on)) return -1;
    if (on) return key_error(tk, key, "\"%s\": true is not supported (Qwen2's added tokens have it false)", unsupported[k]);
  }
  return 0;
}

// Appends n bytes to a growable buffer.
typedef struct { char *p; size_t n, cap; } bytebuf;
static void bb_put(bytebuf *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = b->cap * 2 > b->n + n ? b->cap * 2 : b->n + n + 64;
    b->p = lcc_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

// The ByteLevel decoder on one token: its characters' bytes, or its own UTF-8 when a character maps to none.
static void token_bytes(const lcc_tokenizer *tk, const char *s, size_t len, bytebuf *out) {
  size_t start = out->n;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    i += (size_t)lcc_utf8_decode((const unsigned char *)s + i, &cp);
    int b = cp < N_BYTE_CHARS ? tk->chr_byte[cp] : -1;
    if (b < 0) {
      out->n = start;
      bb_put(out, s, len);
      return;
    }
    unsigned char c = (unsigned char)b;
    bb_put(out, &c, 1);
  }
}

// Fills the id tables: kinds, strings, decoded bytes, the string hash and the single-byte ids.
static int load_vocab(lcc_tokenizer *tk, const lcc_json *vocab, const added_token *added, int n_added) {
  byte_map(tk->byte_chr, tk->chr_byte);
  int max_id = -1;
  for (const lcc_json *v = vocab->child; v; v = v->next) {
    if (!v->is_integer || v->integer < 0 || v->integer >= MAX_IDS)
      return key_error(tk, "model.vocab", "the id of token \"%s\" must be an integer in [0, %d)", v->key, MAX_IDS);
    if (v->integer > max_id) max_id = (int)v->integer;
  }
  for (int i = 0; i < n_added; i++) max_id = added[i].id > max_id ? added[i].id : max_id;
  tk->n_ids = max_id + 1;
  typedef struct { const char *s; size_t len; } str_ref;
  str_ref *ref = lcc_calloc((size_t)tk->n_ids, sizeof *ref);   // [n_ids] the string of each id (in the JSON)
  tk->kind = lcc_calloc((size_t)tk->n_ids, 1);
  int rc = 0;
  for (const lcc_json *v = vocab->child; v && !rc; v = v->next) {
    if (ref[v->integer].s)
      rc = key_error(tk, "model.vocab", "id %lld is given to both \"%s\" and \"%s\"", (long long)v->integer,
                     ref[v->integer].s, v->key);
    ref[v->integer] = (str_ref){v->key, strlen(v->key)}, tk->kind[v->integer] = TOK_VOCAB;
  }
  // HF gives an added token that is not in the vocabulary the id after the vocabulary (its entry count) and
  // after the added tokens before it, whatever the file says (with a warning): a file that says otherwise
  // would encode differently there, so it is rejected.
  int64_t max_added = -1;
  for (int i = 0; i < n_added && !rc; i++) {
    const added_token *a = &added[i];
    const lcc_json *c = a->content;
    int64_t hf_id = max_added < 0 || max_added < (int64_t)vocab->count ? (int64_t)vocab->count : max_added + 1;
    char key[64];
    snprintf(key, sizeof key, "added_tokens[%d]", i);
    if (tk->kind[a->id] == TOK_ADDED || tk->kind[a->id] == TOK_SPECIAL)
      rc = key_error(tk, key, "id %d appears twice", a->id);
    else if (ref[a->id].s && (ref[a->id].len != c->str_len || memcmp(ref[a->id].s, c->str, c->str_len)))
      rc = key_error(tk, key, "id %d is \"%s\" in the vocabulary but \"%s\" here", a->id, ref[a->id].s, c->str);
    else if (!ref[a->id].s && a->id != hf_id)
      rc = key_error(tk, key, "id %d, but HF tokenizers gives \"%s\" id %lld (added tokens take the ids after the "
                     "vocabulary, in order)", a->id, c->str, (long long)hf_id);
    ref[a->id] = (str_ref){c->str, c->str_len};
    tk->kind[a->id] = a->special ? TOK_SPECIAL : TOK_ADDED;
    max_added = a->id > max_added ? a->id : max_added;
  }
  bytebuf text = {0}, bytes = {0};
  tk->text_off = lcc_malloc(((size_t)tk->n_ids + 1) * sizeof(uint32_t));
  tk->bytes_off = lcc_malloc(((size_t)tk->n_ids + 1) * sizeof(uint32_t));
  for (int id = 0; id < tk->n_ids && !rc; id++) {
    tk->text_off[id] = (uint32_t)text.n, tk->bytes_off[id] = (uint32_t)bytes.n;
    if (!ref[id].s) continue;
    bb_put(&text, ref[id].s, ref[id].len);
    bb_put(&text, "", 1);
    token_bytes(tk, ref[id].s, ref[id].len, &bytes);
    if (text.n > UINT32_MAX / 2 || bytes.n > UINT32_MAX / 2) rc = key_error(tk, "model.vocab", "too large");
  }
  free(ref);
  tk->text_off[tk->n_ids] = (uint32_t)text.n, tk->bytes_off[tk->n_ids] = (uint32_t)bytes.n;
  tk->text = text.p, tk->bytes = (uint8_t *)bytes.p;
  if (rc) return -1;

  uint32_t cap = pow2_slots((size_t)tk->n_ids);
  tk->str_mask = cap - 1;
  tk->str_slots = lcc_malloc(cap * sizeof(int32_t));
  memset(tk->str_slots, 0xFF, cap * sizeof(int32_t));   // -1: free
  for (int32_t id = 0; id < tk->n_ids; id++) {
    if (tk->kind[id] == TOK_NONE) continue;
    size_t len;
    const char *s = tok_str(tk, id, &len);
    uint32_t slot = str_slot(tk, s, len);
    if (tk->str_slots[slot] >= 0)
      return key_error(tk, "model.vocab", "token \"%s\" has two ids (%d and %d)", s, tk->str_slots[slot], id);
    tk->str_slots[slot] = id;
  }
  for (int b = 0; b < 256; b++) {
    char u[4];
    tk->byte_id[b] = str_id(tk, u, (size_t)lcc_utf8_encode(tk->byte_chr[b], u));
  }
  return 0;
}

static int pat_longer(const void *a, const void *b) {
  const added_pat *x = a, *y = b;
  return x->len != y->len ? (x->len < y->len ? 1 : -1) : (x->id > y->id) - (x->id < y->id);
}

// Splits the added tokens into those matched on the raw text and those matched after normalization (whose
// patterns are normalized too, as HF does).
static void load_added(lcc_tokenizer *tk, const added_token *added, int n_added) {
  bytebuf pats = {0};
  lcc_nfc_buf nb = {0};
  tk->raw.p = lcc_calloc((size_t)n_added + 1, sizeof(added_pat));
  tk->norm.p = lcc_calloc((size_t)n_added + 1, sizeof(added_pat));
  for (int i = 0; i < n_added; i++) {
    const char *s = added[i].content->str;
    size_t len = added[i].content->str_len;
    added_set *set = added[i].normalized ? &tk->norm : &tk->raw;
    if (added[i].normalized && tk->nfc) len = lcc_nfc(s, len, &nb, &s);
    set->p[set->n++] = (added_pat){(uint32_t)pats.n, (uint32_t)len, added[i].id};
    set->first[(unsigned char)s[0]] = 1;
    bb_put(&pats, s, len);
  }
  lcc_nfc_buf_free(&nb);
  tk->pats = pats.p;
  qsort(tk->raw.p, (size_t)tk->raw.n, sizeof(added_pat), pat_longer);
  qsort(tk->norm.p, (size_t)tk->norm.n, sizeof(added_pat), pat_longer);
}

static int load_merges(lcc_tokenizer *tk, const lcc_json *merges) {
  uint32_t cap = pow2_slots(merges->count);
  tk->merge_mask = cap - 1;
  tk->merges = lcc_malloc(cap * sizeof(merge_slot));
  for (uint32_t i = 0; i < cap; i++) tk->merges[i].key = EMPTY_KEY;
  bytebuf joined = {0};
  int rank = 0, rc = 0;
  for (const lcc_json *m = merges->child; m && !rc; m = m->next, rank++) {
    // "left right" (tokenizers < 0.20) or ["left", "right"]
    const char *a, *b;
    size_t la, lb;
    if (m->type == LCC_JSON_STRING) {
      const char *sp = memchr(m->str, ' ', m->str_len);
      if (!sp || memchr(sp + 1, ' ', m->str_len - (size_t)(sp + 1 - m->str))) {
        rc = lcc_error("%s: \"model.merges\"[%d]: \"%s\" is not two tokens separated by one space", tk->path, rank, m->str);
        break;
      }
      a = m->str, la = (size_t)(sp - m->str), b = sp + 1, lb = m->str_len - la - 1;
    } else {
      const lcc_json *x = lcc_json_at(m, 0), *y = lcc_json_at(m, 1);
      if (m->type != LCC_JSON_ARRAY || m->count != 2 || x->type != LCC_JSON_STRING || y->type != LCC_JSON_STRING) {
        rc = lcc_error("%s: \"model.merges\"[%d]: must be \"left right\" or [\"left\", \"right\"]", tk->path, rank);
        break;
      }
      a = x->str, la = x->str_len, b = y->str, lb = y->str_len;
    }
    joined.n = 0;
    bb_put(&joined, a, la);
    bb_put(&joined, b, lb);
    int32_t ia = str_id(tk, a, la), ib = str_id(tk, b, lb), ij = str_id(tk, joined.p, joined.n);
    if (ia < 0 || ib < 0 || ij < 0) {
      rc = lcc_error("%s: \"model.merges\"[%d]: token \"%.*s\" is not in the vocabulary", tk->path, rank,
                     (int)(ia < 0 ? la : ib < 0 ? lb : joined.n), ia < 0 ? a : ib < 0 ? b : joined.p);
      break;
    }
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    uint32_t s = merge_index(key, tk->merge_mask);
    while (tk->merges[s].key != EMPTY_KEY && tk->merges[s].key != key) s = (s + 1) & tk->merge_mask;
    tk->merges[s] = (merge_slot){key, rank, ij};   // a repeated pair keeps its last rank, as in HF
    tk->hash = fnv1a(tk->hash, &key, sizeof key);
  }
  free(joined.p);
  return rc;
}

static char *resolve_path(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    size_t n = strlen(path);
    char *p = lcc_malloc(n + sizeof "/tokenizer.json");
    memcpy(p, path, n);
    memcpy(p + n, "/tokenizer.json", sizeof "/tokenizer.json");
    return p;
  }
  return lcc_strdup(path);
}

lcc_tokenizer *lcc_tokenizer_load(const char *path) {
  lcc_tokenizer *tk = lcc_calloc(1, sizeof *tk);
  tk->path = resolve_path(path);
  size_t len;
  char *json = lcc_read_file(tk->path, &len);
  lcc_json_doc *doc = json ? lcc_json_parse(json, len, tk->path) : NULL;
  free(json);
  if (!doc) {
    lcc_tokenizer_free(tk);
    return NULL;
  }
  const lcc_json *root = lcc_json_root(doc), *model = lcc_json_get(root, "model");
  const lcc_json *vocab = lcc_json_get(model, "vocab"), *merges = lcc_json_get(model, "merges");
  const lcc_json *added_json = lcc_json_get(root, "added_tokens");
  added_token *added = NULL;
  int n_added = 0, rc = check_config(tk, root);
  if (!rc && (!vocab || vocab->type != LCC_JSON_OBJECT)) rc = key_error(tk, "model.vocab", "missing (or not an object)");
  if (!rc && (!merges || merges->type != LCC_JSON_ARRAY)) rc = key_error(tk, "model.merges", "missing (or not an array)");
  if (!rc && !is_null(added_json) && added_json->type != LCC_JSON_ARRAY)
    rc = key_error(tk, "added_tokens", "must be an array");
  if (!rc && !is_null(added_json)) {
    added = lcc_calloc(added_json->count + 1, sizeof *added);
    for (const lcc_json *t = added_json->child; t && !rc; t = t->next, n_added++)
      rc = read_added(tk, t, (size_t)n_added, &added[n_added]);
  }
  if (!rc) rc = load_vocab(tk, vocab, added, n_added);
  if (!rc) {
    load_added(tk, added, n_added);
    tk->hash = fnv1a(FNV_SEED, tk->text, tk->text_off[tk->n_ids]);   // vocab and added tokens, in id order
    tk->hash = fnv1a(tk->hash, tk->kind, (size_t)tk->n_ids);
    int flags[2] = {tk->nfc, tk->ignore_merges};
    tk->hash = fnv1a(tk->hash, flags, sizeof flags);
    rc = load_merges(tk, merges);
  }
  free(added);
  lcc_json_free(doc);
  if (rc) {
    lcc_tokenizer_free(tk);
    return NULL;
  }
  return tk;
}

void lcc_tokenizer_free(lcc_tokenizer *tk) {
  if (!tk) return;
  free(tk->path);
  free(tk->kind);
  free(tk->text);
  free(tk->text_off);
  free(tk->bytes);
  free(tk->bytes_off);
  free(tk->str_slots);
  free(tk->merges);
  free(tk->pats);
  free(tk->raw.p);
  free(tk->norm.p);
  free(tk);
}

// ---------------------------------------------------------------------------------------------------------
// the Qwen2 split pattern

static inline int class_at(const unsigned char *s, size_t i, int *n) {
  uint32_t cp = s[i];
  if (cp < 0x80) {
    *n = 1;
    if ((cp | 0x20) - 'a' < 26) return LCC_UNI_LETTER;
    if (cp - '0' < 10) return LCC_UNI_NUMBER;
    if (cp == ' ' || cp - '\t' < 5) return LCC_UNI_SPACE;
    return LCC_UNI_OTHER;
  }
  *n = lcc_utf8_decode(s + i, &cp);
  return lcc_uni_class_of(cp);
}

// End of the run of characters of class cls that starts at i.
static size_t run_end(const unsigned char *s, size_t len, size_t i, int cls) {
  int n;
  while (i < len && class_at(s, i, &n) == cls) i += (size_t)n;
  return i;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) after the apostrophe at i - 1: the end of the match, or 0. Case-insensitive
// matching also takes U+017F LATIN SMALL LETTER LONG S for s (its case folding), as Oniguruma does.
static size_t contraction(const unsigned char *s, size_t len, size_t i) {
  int c = s[i] | 0x20, c2 = i + 1 < len ? s[i + 1] | 0x20 : 0;
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 1;
  if (s[i] == 0xC5 && i + 1 < len && s[i + 1] == 0xBF) return i + 2;   // U+017F
  if ((c == 'r' || c == 'v') && c2 == 'e') return i + 2;
  if (c == 'l' && c2 == 'l') return i + 2;
  return 0;
}

// End of the match of the pattern at p (p < len; some alternative always matches a non-empty prefix).
// Alternatives are tried in order, each with the backtracking a regex engine would do.
static size_t match_at(const unsigned char *s, size_t len, size_t p) {
  int n0, n1;
  int c0 = class_at(s, p, &n0);
  size_t e;
  if (s[p] == '\'' && p + 1 < len && (e = contraction(s, len, p + 1))) return e;
  if (c0 == LCC_UNI_LETTER) return run_end(s, len, p, LCC_UNI_LETTER);             // \p{L}+
  if (c0 != LCC_UNI_NUMBER && s[p] != '\r' && s[p] != '\n' && p + (size_t)n0 < len &&
      class_at(s, p + (size_t)n0, &n1) == LCC_UNI_LETTER)                          // [^\r\n\p{L}\p{N}]\p{L}+
    return run_end(s, len, p + (size_t)n0, LCC_UNI_LETTER);
  if (c0 == LCC_UNI_NUMBER) return p + (size_t)n0;                                 // \p{N}
  size_t q = s[p] == ' ' ? p + 1 : p;                                              // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  if (q < len && class_at(s, q, &n1) == LCC_UNI_OTHER) {
    q = run_end(s, len, q, LCC_UNI_OTHER);
    while (q < len && (s[q] == '\r' || s[q] == '\n')) q++;
    return q;
  }
  // c0 is whitespace: the run p..r, the last \r or \n in it, the start of its last character
  size_t r = p, after_nl = 0, last = p;
  int n;
  while (r < len && class_at(s, r, &n) == LCC_UNI_SPACE) {
    if (s[r] == '\r' || s[r] == '\n') after_nl = r + 1;
    last = r;
    r += (size_t)n;
  }
  if (after_nl) return after_nl;             // \s*[\r\n]+
  if (r == len || last == p) return r;       // \s+(?!\S) at the end of the text, or \s+
  return last;                               // \s+(?!\S): the last space goes with the next word
}

// ---------------------------------------------------------------------------------------------------------
// BPE

lcc_tok_scratch *lcc_tok_scratch_new(void) {
  lcc_tok_scratch *s = lcc_calloc(1, sizeof(lcc_tok_scratch));
  s->cache = lcc_calloc(CACHE_SLOTS, sizeof(cache_slot));
  return s;
}

void lcc_tok_scratch_free(lcc_tok_scratch *s) {
  if (!s) return;
  free(s->cache);
  lcc_nfc_buf_free(&s->nfc);
  free(s->sym);
  free(s->prev);
  free(s->next);
  free(s->heap);
  free(s->bl);
  free(s);
}

void lcc_ids_push(lcc_ids *l, int32_t id) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->ids = lcc_realloc(l->ids, (size_t)l->cap * sizeof(int32_t));
  }
  l->ids[l->n++] = id;
}

void lcc_ids_free(lcc_ids *l) {
  free(l->ids);
  *l = (lcc_ids){0};
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
  size_t i = (*n)++;
  while (i > 0 && h[(i - 1) / 2] > v) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
  uint64_t top = h[0], v = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (v <= h[c]) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
  return top;
}

// Queues the merge of the symbol at i with its right neighbour, if the pair has one.
static void queue_merge(const lcc_tokenizer *tk, lcc_tok_scratch *s, size_t *nh, int32_t i) {
  if (i < 0 || s->next[i] < 0) return;
  const merge_slot *m = merge_find(tk, s->sym[i], s->sym[s->next[i]]);
  if (m) heap_push(s->heap, nh, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)i);
}

static void grow_scratch(lcc_tok_scratch *s, size_t n) {
  if (n <= s->cap_sym) return;
  s->cap_sym = n > 2 * s->cap_sym ? n : 2 * s->cap_sym;
  s->sym = lcc_realloc(s->sym, s->cap_sym * sizeof(int32_t));
  s->prev = lcc_realloc(s->prev, s->cap_sym * sizeof(int32_t));
  s->next = lcc_realloc(s->next, s->cap_sym * sizeof(int32_t));
  s->heap = lcc_realloc(s->heap, 3 * s->cap_sym * sizeof(uint64_t));
  s->bl = lcc_realloc(s->bl, 2 * s->cap_sym);   // each byte's character takes at most 2 UTF-8 bytes
}

// The ids of one word w[0..n) (n > 0).
static int bpe_word(const lcc_tokenizer *tk, lcc_tok_scratch *s, const unsigned char *w, size_t n, lcc_ids *out) {
  if (n > INT32_MAX) return lcc_error("tokenizer %s: a word of %zu bytes is too long", tk->path, n);
  grow_scratch(s, n);
  for (size_t i = 0; i < n; i++) {
    s->sym[i] = tk->byte_id[w[i]];
    if (s->sym[i] < 0) return lcc_error("tokenizer %s: no token for byte 0x%02X", tk->path, w[i]);
    s->prev[i] = (int32_t)i - 1, s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
  }
  if (n == 1) {
    lcc_ids_push(out, s->sym[0]);
    return 0;
  }
  if (tk->ignore_merges) {   // the whole word, when it is a token (added tokens never reach here: split off)
    size_t l = 0;
    for (size_t i = 0; i < n; i++) l += (size_t)lcc_utf8_encode(tk->byte_chr[w[i]], s->bl + l);
    int32_t id = str_id(tk, s->bl, l);
    if (id >= 0) {
      lcc_ids_push(out, id);
      return 0;
    }
  }
  size_t nh = 0;
  for (int32_t i = 0; i + 1 < (int32_t)n; i++) queue_merge(tk, s, &nh, i);
  while (nh) {
    uint64_t top = heap_pop(s->heap, &nh);
    int32_t i = (int32_t)(uint32_t)top, j;
    if (s->sym[i] < 0 || (j = s->next[i]) < 0) continue;   // stale: merged away, or now the last symbol
    const merge_slot *m = merge_find(tk, s->sym[i], s->sym[j]);
    if (!m || (uint32_t)m->rank != top >> 32) continue;      // stale: the pair at i changed
    s->sym[i] = m->id, s->sym[j] = -1;
    s->next[i] = s->next[j];
    if (s->next[j] >= 0) s->prev[s->next[j]] = i;
    queue_merge(tk, s, &nh, s->prev[i]);
    queue_merge(tk, s, &nh, i);
  }
  for (int32_t i = 0; i >= 0; i = s->next[i]) lcc_ids_push(out, s->sym[i]);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// encode

// The ids of one word, from the cache or by BPE (then cached).
static int encode_word(const lcc_tokenizer *tk, lcc_tok_scratch *s, const unsigned char *w, size_t n, lcc_ids *out) {
  if (n > CACHE_WORD) return bpe_word(tk, s, w, n, out);
  cache_slot *c = &s->cache[fnv1a(FNV_SEED, w, n) & (CACHE_SLOTS - 1)];
  if (c->len == n && !memcmp(c->word, w, n)) {
    for (int k = 0; k < c->n; k++) lcc_ids_push(out, c->ids[k]);
    return 0;
  }
  int first = out->n;
  if (bpe_word(tk, s, w, n, out)) return -1;
  if (out->n - first <= CACHE_IDS) {
    c->len = (uint8_t)n, c->n = (uint8_t)(out->n - first);
    memcpy(c->word, w, n);
    memcpy(c->ids, out->ids + first, (size_t)c->n * sizeof(int32_t));
  }
  return 0;
}

// Words of the split pattern in t[0..len), each through BPE.
static int encode_words(const lcc_tokenizer *tk, lcc_tok_scratch *s, const unsigned char *t, size_t len, lcc_ids *out) {
  for (size_t p = 0; p < len;) {
    size_t e = match_at(t, len, p);
    if (encode_word(tk, s, t + p, e - p, out)) return -1;
    p = e;
  }
  return 0;
}

// The leftmost-longest match of the patterns of set in t[from..len): its start (len when none) and *hit.
static size_t find_added(const lcc_tokenizer *tk, const added_set *set, const unsigned char *t, size_t from,
                         size_t len, const added_pat **hit) {
  if (set->n == 0) return len;
  for (size_t i = from; i < len; i++) {
    if (!set->first[t[i]]) continue;
    for (int k = 0; k < set->n; k++) {
      const added_pat *a = &set->p[k];
      if (a->len <= len - i && !memcmp(t + i, tk->pats + a->off, a->len)) {
        *hit = a;
        return i;
      }
    }
  }
  return len;
}

// Ids of a piece of text between raw-matched added tokens: NFC, then the normalized added tokens, then words.
static int encode_piece(const lcc_tokenizer *tk, lcc_tok_scratch *s, const char *t, size_t len, lcc_ids *out) {
  if (tk->nfc) len = lcc_nfc(t, len, &s->nfc, &t);
  const unsigned char *u = (const unsigned char *)t;
  for (size_t p = 0; p < len;) {
    const added_pat *hit = NULL;
    size_t m = find_added(tk, &tk->norm, u, p, len, &hit);
    if (encode_words(tk, s, u + p, m - p, out)) return -1;
    if (!hit) break;
    lcc_ids_push(out, hit->id);
    p = m + hit->len;
  }
  return 0;
}

int lcc_tokenizer_encode(const lcc_tokenizer *tk, lcc_tok_scratch *s, const char *text, size_t len, lcc_ids *out) {
  size_t valid = lcc_utf8_valid_prefix(text, len);
  if (valid < len) return lcc_error("tokenizer %s: the text is not valid UTF-8 (at byte %zu of %zu)", tk->path, valid, len);
  if (s->cache_owner != tk->hash) {   // the cached ids are another tokenizer's
    memset(s->cache, 0, CACHE_SLOTS * sizeof(cache_slot));
    s->cache_owner = tk->hash;
  }
  const unsigned char *u = (const unsigned char *)text;
  for (size_t p = 0; p < len;) {
    const added_pat *hit = NULL;
    size_t m = find_added(tk, &tk->raw, u, p, len, &hit);
    if (encode_piece(tk, s, text + p, m - p, out)) return -1;
    if (!hit) break;
    lcc_ids_push(out, hit->id);
    p = m + hit->len;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// decode

typedef struct {
  char *out;
  size_t cap, n;
  int full;          // a character did not fit: nothing more is written
} sink;

static void sink_put(sink *k, const void *c, size_t n) {
  if (k->full || k->n + n + 1 > k->cap) {
    k->full = 1;
    return;
  }
  memcpy(k->out + k->n, c, n);
  k->n += n;
}

// A UTF-8 reader that replaces each maximal ill-formed part with U+FFFD.
typedef struct {
  unsigned char b[4];
  int have, need;     // bytes held of the current character, and its length
  unsigned lo, hi;    // allowed range of its second byte
} utf8_reader;

static const char REPLACEMENT[] = "\xEF\xBF\xBD";   // U+FFFD

static void read_byte(utf8_reader *r, sink *k, unsigned char c) {
  if (r->have) {
    unsigned lo = r->have == 1 ? r->lo : 0x80, hi = r->have == 1 ? r->hi : 0xBF;
    if (c >= lo && c <= hi) {
      r->b[r->have++] = c;
      if (r->have == r->need) {
        sink_put(k, r->b, (size_t)r->need);
        r->have = 0;
      }
      return;
    }
    sink_put(k, REPLACEMENT, 3);   // the incomplete character; c starts afresh
    r->have = 0;
  }
  if (c < 0x80) {
    sink_put(k, &c, 1);
    return;
  }
  r->lo = 0x80, r->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) r->need = 2;
  else if (c >= 0xE0 && c <= 0xEF) r->need = 3, r->lo = c == 0xE0 ? 0xA0 : 0x80, r->hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) r->need = 4, r->lo = c == 0xF0 ? 0x90 : 0x80, r->hi = c == 0xF4 ? 0x8F : 0xBF;
  else {
    sink_put(k, REPLACEMENT, 3);
    return;
  }
  r->b[0] = c, r->have = 1;
}

long lcc_tokenizer_decode(const lcc_tokenizer *tk, const int32_t *ids, int n, int skip_special, char *out, size_t cap) {
  sink k = {out, cap, 0, 0};
  utf8_reader r = {0};
  for (int i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id < 0 || id >= tk->n_ids || tk->kind[id] == TOK_NONE)
      return lcc_error("tokenizer %s: id %d (position %d) is not in the vocabulary", tk->path, id, i);
    if (skip_special && tk->kind[id] == TOK_SPECIAL) continue;
    for (uint32_t b = tk->bytes_off[id]; b < tk->bytes_off[id + 1]; b++) read_byte(&r, &k, tk->bytes[b]);
  }
  if (r.have) sink_put(&k, REPLACEMENT, 3);
  if (cap) out[k.n] = 0;
  return (long)k.n;
}

// ---------------------------------------------------------------------------------------------------------
// lookups

int32_t lcc_tokenizer_id(const lcc_tokenizer *tk, const char *token) { return str_id(tk, token, strlen(token)); }

const char *lcc_tokenizer_token(const lcc_tokenizer *tk, int32_t id) {
  if (id < 0 || id >= tk->n_ids || tk->kind[id] == TOK_NONE) return NULL;
  return tk->text + tk->text_off[id];
}

int lcc_tokenizer_vocab_size(const lcc_tokenizer *tk) { return tk->n_ids; }

uint64_t lcc_tokenizer_hash(const lcc_tokenizer *tk) { return tk->hash; }
