// Tokenizer: ids identical to HF tokenizers on every fixture line, decode and NFC against HF and Python,
// added tokens inside text, the tiny demo tokenizer's vocabulary, BPE options and normalized added tokens on
// hand-made vocabularies, clear errors for bad files, and two threads encoding at once.
// Fixtures: tests/reference/make_tokenizer_fixtures.py.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "testlib.h"
#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

#define QWEN2_LIKE "tests/fixtures/tokenizer/qwen2_like/tokenizer.json"
#define CASES "tests/fixtures/tokenizer/cases.safetensors"
#define TINY_DIR "configs/tokenizer/tiny"

// ---------------------------------------------------------------------------------------------------------
// the fixture lines

typedef struct {          // strings of some lines: line[k]'s string is data[off[k] .. off[k+1])
  const int32_t *line;    // [n] line indices, ascending (NULL: every line, in order)
  const uint8_t *data;
  const int32_t *off;     // [n + 1]
  int n;
} strings;

typedef struct {
  lcc_st_file *f;
  int n;                  // lines
  strings text;           // every line
  const int32_t *ids;     // HF ids of line i: ids[ids_off[i] .. ids_off[i+1])
  const int32_t *ids_off;
  strings nfc;            // Python NFC, where it differs from the line
  strings dec;            // HF decode(ids), where it differs from the NFC
  strings skip;           // HF decode(ids, skip_special_tokens), where it differs from decode (lines up to the
                          // last one stored: the fixture keeps the first 300 such lines)
} cases;

static const void *tensor(const lcc_st_file *f, const char *name, lcc_dtype dtype, int64_t *numel) {
  const lcc_st_tensor *t = lcc_st_find(f, name);
  LCC_CHECK(t && t->dtype == dtype && t->ndim == 1, "%s: tensor %s missing or not 1-D %s", f->path, name,
            lcc_dtype_name(dtype));
  *numel = t->shape[0];
  return lcc_st_data(f, t);
}

static strings exceptions(const lcc_st_file *f, const char *name) {
  char key[32];
  int64_t n, n_off, n_data;
  strings s;
  snprintf(key, sizeof key, "%s_line", name);
  s.line = tensor(f, key, LCC_I32, &n);
  s.data = tensor(f, name, LCC_U8, &n_data);
  snprintf(key, sizeof key, "%s_off", name);
  s.off = tensor(f, key, LCC_I32, &n_off);
  s.n = (int)n;
  LCC_CHECK(n_off == n + 1 && s.off[n] == n_data, "%s: bad %s offsets", f->path, name);
  return s;
}

static cases load_cases(void) {
  cases c = {0};
  c.f = lcc_st_open(CASES);
  LCC_CHECK(c.f, "%s", lcc_last_error());
  int64_t n_off, n_text, n_ids, n_ids_off;
  c.text.data = tensor(c.f, "text", LCC_U8, &n_text);
  c.text.off = tensor(c.f, "text_off", LCC_I32, &n_off);
  c.ids = tensor(c.f, "ids", LCC_I32, &n_ids);
  c.ids_off = tensor(c.f, "ids_off", LCC_I32, &n_ids_off);
  c.n = c.text.n = (int)n_off - 1;
  LCC_CHECK(n_ids_off == n_off && c.text.off[c.n] == n_text && c.ids_off[c.n] == n_ids, "%s: bad offsets", CASES);
  c.nfc = exceptions(c.f, "nfc");
  c.dec = exceptions(c.f, "dec");
  c.skip = exceptions(c.f, "skip");
  LCC_CHECK(c.skip.n > 0, "%s: no skip_special lines", CASES);
  return c;
}

// The string of `line` in s; 0 when s does not hold that line.
static int lookup(const strings *s, int line, const char **str, size_t *len) {
  int k = line;
  if (s->line) {
    int lo = 0, hi = s->n - 1;
    for (k = -1; lo <= hi;) {
      int mid = (lo + hi) / 2;
      if (s->line[mid] == line) {
        k = mid;
        break;
      }
      if (s->line[mid] < line) lo = mid + 1;
      else hi = mid - 1;
    }
    if (k < 0) return 0;
  }
  *str = (const char *)s->data + s->off[k];
  *len = (size_t)(s->off[k + 1] - s->off[k]);
  return 1;
}

static void line_text(const cases *c, int i, const char **s, size_t *len) {
  *s = (const char *)c->text.data + c->text.off[i];
  *len = (size_t)(c->text.off[i + 1] - c->text.off[i]);
}

// What NFC, decode and decode(skip_special) of line i should give.
static void expected(const cases *c, int i, const char **nfc, size_t *nfc_len, const char **dec, size_t *dec_len,
                     const char **skip, size_t *skip_len) {
  line_text(c, i, nfc, nfc_len);
  lookup(&c->nfc, i, nfc, nfc_len);
  *dec = *nfc, *dec_len = *nfc_len;
  lookup(&c->dec, i, dec, dec_len);
  *skip = *dec, *skip_len = *dec_len;
  lookup(&c->skip, i, skip, skip_len);
}

// Prints s[0..len) with escapes, at most max bytes.
static void print_escaped(const char *s, size_t len, size_t max) {
  for (size_t i = 0; i < len && i < max; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') fputs("\\n", stderr);
    else if (ch == '\r') fputs("\\r", stderr);
    else if (ch == '\t') fputs("\\t", stderr);
    else if (ch < 0x20) fprintf(stderr, "\\x%02X", ch);
    else fputc(ch, stderr);
  }
  if (len > max) fprintf(stderr, "... (%zu bytes)", len);
}

static void print_ids(const lcc_tokenizer *tk, const int32_t *ids, int n, int from, int to) {
  for (int k = from < 0 ? 0 : from; k < n && k < to; k++) {
    const char *t = lcc_tokenizer_token(tk, ids[k]);
    fprintf(stderr, " %d\"%s\"", ids[k], t ? t : "?");
  }
  fputc('\n', stderr);
}

// ---------------------------------------------------------------------------------------------------------
// parity with HF

// Encodes every line; returns the number of lines whose ids differ (reporting the first).
static int encode_all(const lcc_tokenizer *tk, const cases *c, lcc_tok_scratch *s, int report) {
  lcc_ids out = {0};
  int bad = 0;
  for (int i = 0; i < c->n; i++) {
    const char *text;
    size_t len;
    line_text(c, i, &text, &len);
    out.n = 0;
    int rc = lcc_tokenizer_encode(tk, s, text, len, &out);
    const int32_t *want = c->ids + c->ids_off[i];
    int n_want = c->ids_off[i + 1] - c->ids_off[i];
    if (rc == 0 && out.n == n_want && !memcmp(out.ids, want, (size_t)n_want * sizeof(int32_t))) continue;
    if (bad++ == 0 && report) {
      int k = 0;
      while (k < out.n && k < n_want && out.ids[k] == want[k]) k++;
      fprintf(stderr, "line %d (rc %d %s): ids differ at position %d (ours %d ids, HF %d)\n  text: ", i, rc,
              rc ? lcc_last_error() : "", k, out.n, n_want);
      print_escaped(text, len, 300);
      fprintf(stderr, "\n  ours:");
      print_ids(tk, out.ids, out.n, k - 3, k + 4);
      fprintf(stderr, "  HF:  ");
      print_ids(tk, want, n_want, k - 3, k + 4);
    }
  }
  lcc_ids_free(&out);
  return bad;
}

static void test_parity(const lcc_tokenizer *tk, const cases *c) {
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  double t0 = lcc_now();
  int bad = encode_all(tk, c, s, 1);
  double dt = lcc_now() - t0;
  int64_t n_ids;
  tensor(c->f, "ids", LCC_I32, &n_ids);
  printf("parity: %d of %d lines differ from HF (%lld ids, %.1f MB in %.3f s)\n", bad, c->n, (long long)n_ids,
         c->text.off[c->n] / 1e6, dt);
  CHECKF(bad == 0, "%d lines differ", bad);
  lcc_tok_scratch_free(s);
}

static int same(const char *a, size_t la, const char *b, size_t lb) { return la == lb && !memcmp(a, b, la); }

// decode == HF decode (with and without special tokens), our NFC == Python's, and decode(encode(x)) == NFC(x)
// on every line where HF's does too (HF normalizes between added tokens, so NFC(x) can differ right after one).
static void test_decode_nfc(const lcc_tokenizer *tk, const cases *c) {
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  lcc_nfc_buf nb = {0};
  lcc_ids ids = {0};
  size_t cap = 1 << 16;
  char *buf = lcc_malloc(cap);
  int bad_dec = 0, bad_skip = 0, bad_nfc = 0, bad_round = 0, round_checked = 0;
  for (int i = 0; i < c->n; i++) {
    const char *text, *nfc, *dec, *skip, *ours_nfc, *unused;
    size_t len, nfc_len, dec_len, skip_len, unused_len;
    line_text(c, i, &text, &len);
    expected(c, i, &nfc, &nfc_len, &dec, &dec_len, &skip, &skip_len);
    if (cap < 4 * len + 16) buf = lcc_realloc(buf, cap = 4 * len + 16);
    const int32_t *want = c->ids + c->ids_off[i];
    int n = c->ids_off[i + 1] - c->ids_off[i];

    long got = lcc_tokenizer_decode(tk, want, n, 0, buf, cap);
    if (got < 0 || !same(buf, (size_t)got, dec, dec_len)) {
      if (!bad_dec++) fprintf(stderr, "line %d: decode differs from HF's\n", i);
    }
    got = lcc_tokenizer_decode(tk, want, n, 1, buf, cap);
    if (i <= c->skip.line[c->skip.n - 1] && (got < 0 || !same(buf, (size_t)got, skip, skip_len))) {   // stored lines
      if (!bad_skip++) fprintf(stderr, "line %d: decode(skip_special) differs from HF's\n", i);
    }
    size_t nl = lcc_nfc(text, len, &nb, &ours_nfc);
    if (!same(ours_nfc, nl, nfc, nfc_len)) {
      if (!bad_nfc++) {
        fprintf(stderr, "line %d: NFC differs from Python's: ", i);
        print_escaped(ours_nfc, nl, 200);
        fputc('\n', stderr);
      }
    }
    if (lookup(&c->dec, i, &unused, &unused_len)) continue;   // HF's decode(encode(x)) != NFC(x) here
    round_checked++;
    ids.n = 0;
    int rc = lcc_tokenizer_encode(tk, s, text, len, &ids);
    got = rc ? -1 : lcc_tokenizer_decode(tk, ids.ids, ids.n, 0, buf, cap);
    if (got < 0 || !same(buf, (size_t)got, ours_nfc, nl)) {
      if (!bad_round++) fprintf(stderr, "line %d: decode(encode(x)) != NFC(x)\n", i);
    }
  }
  printf("decode: %d lines differ from HF, %d with skip_special (%d stored lines); NFC: %d differ from Python (%d lines "
         "change); decode(encode(x)) != NFC(x): %d of %d\n", bad_dec, bad_skip, c->skip.n, bad_nfc, c->nfc.n,
         bad_round, round_checked);
  CHECKF(bad_dec == 0 && bad_skip == 0 && bad_nfc == 0 && bad_round == 0, "decode/NFC mismatches");
  CHECKF(c->nfc.n > 1000 && c->dec.n > 0, "the fixture exercises NFC and per-piece NFC");
  free(buf);
  lcc_ids_free(&ids);
  lcc_nfc_buf_free(&nb);
  lcc_tok_scratch_free(s);
}

// ---------------------------------------------------------------------------------------------------------
// added tokens, small cases

static int encode_str(const lcc_tokenizer *tk, const char *text, lcc_ids *out) {
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  out->n = 0;
  int rc = lcc_tokenizer_encode(tk, s, text, strlen(text), out);
  lcc_tok_scratch_free(s);
  return rc;
}

static int ids_are(const lcc_ids *l, const int32_t *want, int n) {
  return l->n == n && !memcmp(l->ids, want, (size_t)n * sizeof(int32_t));
}

static void test_added_tokens(const lcc_tokenizer *tk) {
  lcc_ids l = {0};
  int32_t start = lcc_tokenizer_id(tk, "<|im_start|>"), end = lcc_tokenizer_id(tk, "<|im_end|>");
  int32_t vpad = lcc_tokenizer_id(tk, "<|video_pad|>"), nl = lcc_tokenizer_id(tk, "\xC4\x8A");   // "Ċ" = "\n"
  CHECKF(start == 8001 && end == 8002 && vpad == 8013 && nl == 198, "%d %d %d %d", start, end, vpad, nl);
  CHECKF(lcc_tokenizer_vocab_size(tk) == 8014, "%d", lcc_tokenizer_vocab_size(tk));
  CHECKF(!strcmp(lcc_tokenizer_token(tk, 8002), "<|im_end|>") && !lcc_tokenizer_token(tk, 8014) &&
         !lcc_tokenizer_token(tk, -1), "token strings");

  CHECKF(encode_str(tk, "<|im_start|>user\n<|video_pad|><|video_pad|><|im_end|>", &l) == 0, "%s", lcc_last_error());
  int32_t user = lcc_tokenizer_id(tk, "user");
  int32_t want[] = {start, user, nl, vpad, vpad, end};
  CHECKF(user >= 0 && ids_are(&l, want, 6), "chat turn: %d ids", l.n);
  // "<<|im_end|>>": the added token in the middle; "<|im_start" and "<|IM_START|>" are plain text.
  CHECKF(encode_str(tk, "<<|im_end|>>", &l) == 0 && l.n == 3 && l.ids[1] == end, "<<|im_end|>>");
  CHECKF(encode_str(tk, "<|im_start", &l) == 0 && l.n > 1, "partial");
  for (int k = 0; k < l.n; k++) CHECKF(l.ids[k] < 8000, "partial token is not special");
  CHECKF(encode_str(tk, "<|IM_START|>", &l) == 0 && l.n > 1 && l.ids[0] < 8000, "case matters");
  char out[64];
  CHECKF(lcc_tokenizer_decode(tk, want, 6, 1, out, sizeof out) == 5 && !strcmp(out, "user\n"), "skip: '%s'", out);
  CHECKF(lcc_tokenizer_decode(tk, want, 6, 0, out, 8) == 7 && !strcmp(out, "<|im_st"), "truncated: '%s'", out);
  CHECKF(encode_str(tk, "", &l) == 0 && l.n == 0, "empty text");
  lcc_ids_free(&l);
}

// The demo model's tokenizer: 1000 regular tokens, Qwen2's special tokens at 1000-1013, the commentary words
// and " ..." single tokens.
static void test_tiny(void) {
  lcc_tokenizer *tk = lcc_tokenizer_load(TINY_DIR);   // a folder holding tokenizer.json
  CHECKF(tk, "%s", lcc_last_error());
  if (!tk) return;
  static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                                         "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                                         "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                                         "<|image_pad|>", "<|video_pad|>"};
  for (int i = 0; i < 14; i++) CHECKF(lcc_tokenizer_id(tk, specials[i]) == 1000 + i, "%s", specials[i]);
  CHECKF(lcc_tokenizer_vocab_size(tk) == 1014, "%d", lcc_tokenizer_vocab_size(tk));
  for (int id = 0; id < 1000; id++) CHECKF(lcc_tokenizer_token(tk, id), "id %d has a token", id);
  static const char *const words[] = {" red", " green", " blue", " yellow", " orange", " purple", " white", " black",
                                      " pink", " brown", " gray", " cyan", " circle", " square", " triangle", " star",
                                      " cross", " ring", " diamond", " heart", " ...", "system", "user", "assistant", "\n"};
  lcc_ids l = {0};
  char out[64];
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    CHECKF(encode_str(tk, words[i], &l) == 0 && l.n == 1 && l.ids[0] < 1000, "'%s' is one token (%d)", words[i], l.n);
    CHECKF(lcc_tokenizer_decode(tk, l.ids, l.n, 0, out, sizeof out) >= 0 && !strcmp(out, words[i]), "%s", words[i]);
  }
  CHECKF(encode_str(tk, "\n", &l) == 0 && l.ids[0] == 198, "newline is 198 as in Qwen2");
  const char *turn = "<|im_start|>assistant\n a big red circle now moving left ...<|im_end|>\n";
  CHECKF(encode_str(tk, turn, &l) == 0 && l.ids[0] == 1001 && l.ids[l.n - 2] == 1002 && l.ids[l.n - 3] ==
         lcc_tokenizer_id(tk, "\xC4\xA0..."), "commentary turn");
  char back[128];
  CHECKF(lcc_tokenizer_decode(tk, l.ids, l.n, 0, back, sizeof back) == (long)strlen(turn) && !strcmp(back, turn), "%s", back);
  lcc_ids_free(&l);
  lcc_tokenizer_free(tk);
}

// ---------------------------------------------------------------------------------------------------------
// hand-made tokenizer.json files: BPE options and errors

static const char PATTERN_JSON[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
                                   "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";

typedef struct {                // the parts of a minimal tokenizer.json; NULL = Qwen2's
  const char *model_type;       // "BPE"
  const char *model_opts;       // "model" members before the defaults (a JSON lookup takes the first), each with a comma
  const char *normalizer;       // {"type":"NFC"}
  const char *pattern;          // PATTERN_JSON
  const char *added;            // added_tokens array members
  const char *vocab;            // vocabulary entries after the 256 byte tokens (ids 0-255), each with a leading comma
  const char *merges;           // merges array members
} spec;

// Writes the tokenizer.json of sp to tmp_path(name); returns its path.
static const char *write_spec(const char *name, const spec *sp) {
  const char *path = tmp_path(name);
  FILE *f = fopen(path, "w");
  LCC_CHECK(f, "cannot write %s", path);
  fprintf(f, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[%s],\"normalizer\":%s,"
          "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},"
          "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
          "\"trim_offsets\":false,\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
          "\"trim_offsets\":true,\"use_regex\":true},"
          "\"model\":{\"type\":\"%s\",%s\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":\"\","
          "\"end_of_word_suffix\":\"\",\"fuse_unk\":false,\"vocab\":{",
          sp->added ? sp->added : "", sp->normalizer ? sp->normalizer : "{\"type\":\"NFC\"}",
          sp->pattern ? sp->pattern : PATTERN_JSON, sp->model_type ? sp->model_type : "BPE",
          sp->model_opts ? sp->model_opts : "");
  // the 256 byte tokens in GPT-2 order: printable Latin-1 bytes as themselves, the others from U+0100 on
  int id = 0, next = 256;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (keep) fprintf(f, "%s\"\\u%04X\":%d", id ? "," : "", b, id), id++;
  }
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (!keep) fprintf(f, ",\"\\u%04X\":%d", next++, id++);
  }
  fprintf(f, "%s},\"merges\":[%s]}}\n", sp->vocab ? sp->vocab : "", sp->merges ? sp->merges : "");
  LCC_CHECK(fclose(f) == 0, "cannot write %s", path);
  return path;
}

// ignore_merges: "abc" is a token that no merge makes (merges: b c -> "bc"). Expected ids from HF tokenizers
// 0.21.4 on the same file: "abc abc" -> [64, 256, 220, 64, 256], and with ignore_merges [257, 220, 64, 256].
static void test_bpe_options(void) {
  spec sp = {.vocab = ",\"bc\":256,\"abc\":257", .merges = "\"b c\""};
  lcc_tokenizer *plain = lcc_tokenizer_load(write_spec("plain.json", &sp));
  sp.model_opts = "\"ignore_merges\":true,", sp.merges = "[\"b\",\"c\"]";   // also the pair form of merges
  lcc_tokenizer *ignore = lcc_tokenizer_load(write_spec("ignore.json", &sp));
  CHECKF(plain && ignore, "%s", lcc_last_error());
  if (!plain || !ignore) return;
  lcc_ids l = {0};
  int32_t want_plain[] = {64, 256, 220, 64, 256}, want_ignore[] = {257, 220, 64, 256};
  CHECKF(encode_str(plain, "abc abc", &l) == 0 && ids_are(&l, want_plain, 5), "plain BPE");
  CHECKF(encode_str(ignore, "abc abc", &l) == 0 && ids_are(&l, want_ignore, 4), "ignore_merges");
  CHECKF(lcc_tokenizer_hash(plain) != lcc_tokenizer_hash(ignore), "the option changes the hash");
  lcc_tokenizer *again = lcc_tokenizer_load(tmp_path("plain.json"));
  CHECKF(again && lcc_tokenizer_hash(again) == lcc_tokenizer_hash(plain), "the hash is a function of the file");
  // Invalid UTF-8 and ids outside the vocabulary are errors, not crashes.
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  CHECKF(lcc_tokenizer_encode(plain, s, "ok \xC3\x28", 5, &l) == -1 && strstr(lcc_last_error(), "UTF-8"), "%s",
         lcc_last_error());
  CHECKF(lcc_tokenizer_encode(plain, s, "\xED\xA0\x80", 3, &l) == -1, "a surrogate is invalid UTF-8");
  int32_t bad_ids[] = {5, 258};
  char out[16];
  CHECKF(lcc_tokenizer_decode(plain, bad_ids, 2, 0, out, sizeof out) == -1 && strstr(lcc_last_error(), "258"), "%s",
         lcc_last_error());
  // Decode replaces ill-formed UTF-8 (a lone continuation byte, a truncated character) with U+FFFD.
  int32_t partial[] = {lcc_tokenizer_id(plain, "\xC4\xA2"), 64, lcc_tokenizer_id(plain, "\xC3\xA3")};  // 0x80 a 0xE3
  CHECKF(lcc_tokenizer_decode(plain, partial, 3, 0, out, sizeof out) == 7 && !strcmp(out, "\xEF\xBF\xBD" "a\xEF\xBF\xBD"),
         "lossy decode");
  lcc_tok_scratch_free(s);
  lcc_ids_free(&l);
  lcc_tokenizer_free(plain);
  lcc_tokenizer_free(ignore);
  lcc_tokenizer_free(again);
}

// A normalized added token (matched after NFC, its pattern normalized too) beside a special one. Expected
// values from HF tokenizers 0.21.4 on the same file.
static void test_normalized_added(void) {
  spec sp = {.vocab = ",\"bc\":256,\"abc\":257", .merges = "\"b c\"",
             .added = "{\"id\":258,\"content\":\"e\\u0301!\",\"single_word\":false,\"lstrip\":false,"
                      "\"rstrip\":false,\"normalized\":true,\"special\":false},{\"id\":259,\"content\":\"<s>\","
                      "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}"};
  lcc_tokenizer *tk = lcc_tokenizer_load(write_spec("added.json", &sp));
  CHECKF(tk, "%s", lcc_last_error());
  if (!tk) return;
  lcc_ids l = {0};
  int32_t want1[] = {87, 258, 88}, want2[] = {258, 259, 127, 102}, want3[] = {259, 256};
  CHECKF(encode_str(tk, "x\xC3\xA9!y", &l) == 0 && ids_are(&l, want1, 3), "composed");
  CHECKF(encode_str(tk, "xe\xCC\x81!y", &l) == 0 && ids_are(&l, want1, 3), "decomposed");
  CHECKF(encode_str(tk, "\xC3\xA9!<s>\xC3\xA9", &l) == 0 && ids_are(&l, want2, 4), "both");
  CHECKF(encode_str(tk, "<s>bc", &l) == 0 && ids_are(&l, want3, 2), "special then merge");
  char out[32];
  CHECKF(lcc_tokenizer_decode(tk, want2, 4, 0, out, sizeof out) == 9 && !strcmp(out, "e\xCC\x81!<s>\xC3\xA9"), "%s", out);
  CHECKF(lcc_tokenizer_decode(tk, want2, 4, 1, out, sizeof out) == 6 && !strcmp(out, "e\xCC\x81!\xC3\xA9"), "%s", out);
  lcc_ids_free(&l);
  lcc_tokenizer_free(tk);
}

// Loading fails with one message naming the file and the key.
static void expect_load_error(const char *path, const char *key) {
  lcc_tokenizer *tk = lcc_tokenizer_load(path);
  const char *msg = lcc_last_error();
  CHECKF(!tk && strstr(msg, path) && strstr(msg, key), "loading %s: expected an error naming '%s', got '%s'", path,
         key, tk ? "success" : msg);
  lcc_tokenizer_free(tk);
}

static void test_errors(void) {
  expect_load_error(tmp_path("missing/tokenizer.json"), "No such file");
  expect_load_error(tmp_path(""), "tokenizer.json");   // a folder without one
  const char *path = tmp_path("malformed.json");
  write_text(path, "{\"model\": {\"type\": \"BPE\",}}");
  expect_load_error(path, "line 1");
  struct { spec sp; const char *key; } bad[] = {
      {{.model_type = "WordPiece"}, "model.type"},
      {{.normalizer = "{\"type\":\"NFKC\"}"}, "normalizer.type"},
      {{.pattern = "\\\\s+"}, "pre_tokenizer.pretokenizers[0].pattern"},
      {{.model_opts = "\"byte_fallback\":true,"}, "model.byte_fallback"},
      {{.model_opts = "\"dropout\":0.1,"}, "model.dropout"},
      {{.merges = "\"a b\""}, "model.merges"},                        // "ab" is not in the vocabulary
      {{.merges = "\"a b c\""}, "model.merges"},
      {{.vocab = ",\"x\":-3"}, "model.vocab"},
      {{.vocab = ",\"dup\":5"}, "model.vocab"},                       // id 5 is taken
      {{.added = "{\"id\":300,\"content\":\"<s>\",\"lstrip\":true,\"special\":true}"}, "added_tokens[0]"},
      {{.added = "{\"id\":3,\"content\":\"<s>\",\"special\":true}"}, "added_tokens[0]"},   // id 3 is "$"
      {{.added = "{\"id\":300,\"content\":\"<s>\",\"special\":true}"}, "added_tokens[0]"},  // HF would give 256
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char name[32];
    snprintf(name, sizeof name, "bad%zu.json", i);
    expect_load_error(write_spec(name, &bad[i].sp), bad[i].key);
  }
}

// ---------------------------------------------------------------------------------------------------------
// threads

typedef struct {
  const lcc_tokenizer *tk;
  const cases *c;
  int bad;
} job;

static void *encode_job(void *arg) {
  job *j = arg;
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  j->bad = encode_all(j->tk, j->c, s, 0);
  lcc_tok_scratch_free(s);
  return NULL;
}

static void test_threads(const lcc_tokenizer *tk, const cases *c) {
  job jobs[2] = {{tk, c, -1}, {tk, c, -1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) LCC_CHECK(pthread_create(&th[i], NULL, encode_job, &jobs[i]) == 0, "pthread_create");
  for (int i = 0; i < 2; i++) LCC_CHECK(pthread_join(th[i], NULL) == 0, "pthread_join");
  printf("threads: %d and %d lines differ\n", jobs[0].bad, jobs[1].bad);
  CHECKF(jobs[0].bad == 0 && jobs[1].bad == 0, "two threads");
}

int main(void) {
  double t0 = lcc_now();
  lcc_tokenizer *tk = lcc_tokenizer_load(QWEN2_LIKE);
  LCC_CHECK(tk, "%s", lcc_last_error());
  printf("loaded %s in %.1f ms: %d ids, hash %016llx\n", QWEN2_LIKE, 1e3 * (lcc_now() - t0),
         lcc_tokenizer_vocab_size(tk), (unsigned long long)lcc_tokenizer_hash(tk));
  cases c = load_cases();
  test_parity(tk, &c);
  test_decode_nfc(tk, &c);
  test_added_tokens(tk);
  test_tiny();
  test_bpe_options();
  test_normalized_added();
  test_errors();
  test_threads(tk, &c);
  lcc_st_close(c.f);
  lcc_tokenizer_free(tk);
  return test_finish("test_tokenizer");
}
