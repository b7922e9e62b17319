// JSON reader: valid documents, every class of malformed input, error positions, nesting cap, speed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "testlib.h"
#include "util.h"

static lcc_json_doc *parse(const char *s) { return lcc_json_parse(s, strlen(s), "t.json"); }

// Parses s expecting failure with a message containing `want` (and always the source name).
static void expect_parse_error(const char *s, size_t len, const char *want) {
  lcc_json_doc *d = lcc_json_parse(s, len, "t.json");
  const char *msg = lcc_last_error();
  CHECKF(!d && strstr(msg, "t.json: ") == msg && strstr(msg, want) && strstr(msg, " at line "),
         "input %.60s: expected an error containing '%s', got %s", s, want, d ? "success" : msg);
  lcc_json_free(d);
}
#define BAD(s, want) expect_parse_error(s, sizeof(s) - 1, want)

// The single string value of a one-string document, or NULL.
static int string_is(const char *doc, const char *want, size_t want_len) {
  lcc_json_doc *d = parse(doc);
  const lcc_json *r = lcc_json_root(d);
  int ok = r && r->type == LCC_JSON_STRING && r->str_len == want_len && !memcmp(r->str, want, want_len) && r->str[want_len] == 0;
  if (!d) fprintf(stderr, "%s\n", lcc_last_error());
  lcc_json_free(d);
  return ok;
}

static void test_document(void) {
  lcc_json_doc *d = parse(" {\"a\": [1, -2, 3.5, true, false, null, \"x\"], \"b\": {}, \"a\": 7, \"c\": {\"d\": [[]]}}\n");
  CHECK(d);
  const lcc_json *r = lcc_json_root(d);
  CHECK(r->type == LCC_JSON_OBJECT && r->count == 4 && r->key == NULL);
  const lcc_json *a = lcc_json_get(r, "a");   // first of the duplicate keys
  CHECK(a && a->type == LCC_JSON_ARRAY && a->count == 7 && !strcmp(a->key, "a"));
  CHECK(lcc_json_at(a, 0)->is_integer && lcc_json_at(a, 0)->integer == 1 && lcc_json_at(a, 0)->number == 1.0);
  CHECK(lcc_json_at(a, 1)->integer == -2);
  CHECK(!lcc_json_at(a, 2)->is_integer && lcc_json_at(a, 2)->number == 3.5);
  CHECK(lcc_json_at(a, 3)->type == LCC_JSON_BOOL && lcc_json_at(a, 3)->boolean == 1);
  CHECK(lcc_json_at(a, 4)->type == LCC_JSON_BOOL && lcc_json_at(a, 4)->boolean == 0);
  CHECK(lcc_json_at(a, 5)->type == LCC_JSON_NULL);
  CHECK(lcc_json_at(a, 6)->type == LCC_JSON_STRING && !strcmp(lcc_json_at(a, 6)->str, "x"));
  CHECK(lcc_json_at(a, 6)->key == NULL);
  CHECK(lcc_json_at(a, 7) == NULL);
  const lcc_json *b = lcc_json_get(r, "b");
  CHECK(b && b->type == LCC_JSON_OBJECT && b->count == 0 && b->child == NULL);
  const lcc_json *dd = lcc_json_get(lcc_json_get(r, "c"), "d");
  CHECK(dd && dd->count == 1 && lcc_json_at(dd, 0)->type == LCC_JSON_ARRAY && lcc_json_at(dd, 0)->count == 0);
  CHECK(lcc_json_get(r, "zz") == NULL);
  CHECK(lcc_json_get(a, "a") == NULL);   // not an object
  CHECK(lcc_json_at(r, 0) == NULL);      // not an array
  CHECK(lcc_json_get(NULL, "a") == NULL && lcc_json_at(NULL, 0) == NULL);
  int n = 0;   // members in document order, including the duplicate
  const char *order[] = {"a", "b", "a", "c"};
  for (const lcc_json *m = r->child; m; m = m->next, n++) CHECK(n < 4 && !strcmp(m->key, order[n]));
  CHECK(n == 4);
  lcc_json_free(d);
  lcc_json_free(NULL);

  // scalars at the top level, surrounding whitespace of all four kinds
  d = parse("\t\r\n 42 \n");
  CHECK(d && lcc_json_root(d)->integer == 42);
  lcc_json_free(d);
  d = parse("null");
  CHECK(d && lcc_json_root(d)->type == LCC_JSON_NULL);
  lcc_json_free(d);
}

static void test_strings(void) {
  CHECK(string_is("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8));
  CHECK(string_is("\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6));
  CHECK(string_is("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 4));   // surrogate pair -> U+1F600
  CHECK(string_is("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4));   // U+10FFFF
  CHECK(string_is("\"a\\u0000b\"", "a\0b", 3));                    // NUL kept, length tells
  CHECK(string_is("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9));   // raw UTF-8
  CHECK(string_is("\"\"", "", 0));
  BAD("\"\\uD83D\"", "surrogate");            // lone high
  BAD("\"\\uD83D\\u0041\"", "surrogate");     // high then not low
  BAD("\"\\uD83Dx\"", "surrogate");
  BAD("\"\\uDE00\"", "lone low surrogate");
  BAD("\"\\u12G4\"", "invalid \\u escape");
  BAD("\"\\u12\"", "invalid \\u escape");
  BAD("\"\\x\"", "invalid escape");
  BAD("\"\\", "unterminated string");
  BAD("\"a\tb\"", "control character 0x09");
  BAD("\"a\nb\"", "control character 0x0A");
  BAD("\"\xC3\"", "invalid UTF-8");              // truncated sequence
  BAD("\"\xC3", "invalid UTF-8");                // truncated at the end of input
  BAD("\"\xC0\x80\"", "invalid UTF-8");          // overlong NUL
  BAD("\"\xE0\x80\xAF\"", "invalid UTF-8");      // overlong '/'
  BAD("\"\xED\xA0\x80\"", "invalid UTF-8");      // encoded surrogate
  BAD("\"\xF4\x90\x80\x80\"", "invalid UTF-8");  // above U+10FFFF
  BAD("\"\xFF\"", "invalid UTF-8");
  BAD("\"\x80\"", "invalid UTF-8");              // stray continuation byte
  BAD("\"abc", "unterminated string");
}

static void number_is(const char *s, double want, int is_integer, int64_t integer) {
  lcc_json_doc *d = parse(s);
  const lcc_json *r = lcc_json_root(d);
  int ok = r && r->type == LCC_JSON_NUMBER && r->number == want && r->is_integer == is_integer && (!is_integer || r->integer == integer);
  CHECKF(ok, "number %s: got %s", s, d ? "a different value" : lcc_last_error());
  lcc_json_free(d);
}

static void test_numbers(void) {
  number_is("0", 0, 1, 0);
  number_is("-0", 0, 1, 0);
  number_is("123", 123, 1, 123);
  number_is("9223372036854775807", 9223372036854775807.0, 1, INT64_MAX);
  number_is("-9223372036854775808", -9223372036854775808.0, 1, INT64_MIN);
  number_is("9223372036854775808", 9223372036854775808.0, 0, 0);    // one past int64
  number_is("-9223372036854775809", -9223372036854775809.0, 0, 0);
  number_is("18446744073709551616", 18446744073709551616.0, 0, 0);
  number_is("123456789012345678901234567890", 123456789012345678901234567890.0, 0, 0);
  number_is("1.5", 1.5, 0, 0);
  number_is("1e3", 1000, 0, 0);   // integral value but not integer syntax
  number_is("1.0", 1, 0, 0);
  number_is("2.5E-3", 2.5e-3, 0, 0);
  number_is("-1.25e+2", -125, 0, 0);
  number_is("1e-06", 1e-6, 0, 0);
  number_is("1E400", HUGE_VAL, 0, 0);   // out of double range: strtod's infinity
  // longer than any small buffer: 0.1111... (300 digits)
  char lng[310] = "0.";
  memset(lng + 2, '1', 300);
  lng[302] = 0;
  number_is(lng, 0.11111111111111111, 0, 0);
  // the input need not be NUL-terminated after the number
  lcc_json_doc *d = lcc_json_parse("1.59", 3, "t.json");
  CHECK(d && lcc_json_root(d)->number == 1.5);
  lcc_json_free(d);
  d = lcc_json_parse("1234", 2, "t.json");
  CHECK(d && lcc_json_root(d)->integer == 12);
  lcc_json_free(d);
  BAD("01", "leading zero");
  BAD("-01", "leading zero");
  BAD("-", "invalid number");
  BAD("1.", "digit expected after '.'");
  BAD("1.e3", "digit expected after '.'");
  BAD(".5", "expected a value");
  BAD("+1", "expected a value");
  BAD("1e", "digit expected in exponent");
  BAD("1e+", "digit expected in exponent");
  BAD("0x10", "unexpected 'x' after the document");
  BAD("-a", "invalid number");
  BAD("[1 2]", "expected ',' or ']'");
  BAD("NaN", "expected a value");
  BAD("-Infinity", "invalid number");
}

static void test_syntax(void) {
  BAD("tru", "expected a value");
  BAD("True", "expected a value");
  BAD("nul", "expected a value");
  BAD("", "unexpected end of input");
  BAD("   ", "unexpected end of input");
  BAD("{} x", "unexpected 'x' after the document");
  BAD("1 2", "unexpected '2' after the document");
  BAD("[1]]", "unexpected ']' after the document");
  BAD("[1],", "unexpected ',' after the document");
  BAD("{\"a\": [1, 2", "expected ',' or ']' but found end of input");
  BAD("{\"a\"", "expected ':' after the key but found end of input");
  BAD("{\"a\":", "unexpected end of input");
  BAD("{\"a\" 1}", "expected ':' after the key");
  BAD("{\"a\": 1 \"b\": 2}", "expected ',' or '}'");
  BAD("{a: 1}", "expected a string key");
  BAD("{1: 1}", "expected a string key");
  BAD("[1,]", "expected a value");
  BAD("{\"a\":1,}", "expected a string key");
  BAD("[", "unexpected end of input");
  BAD("['a']", "expected a value but found '''");
  BAD("/* c */ 1", "expected a value");
  expect_parse_error("[1,\0 2]", 7, "expected a value but found byte 0x00");
  expect_parse_error("[1]\0", 4, "unexpected byte 0x00 after the document");
  BAD("\xEF\xBB\xBF{}", "byte 0xEF");   // a byte-order mark is not JSON

  // line and column of the offending byte (columns count characters, not bytes)
  BAD("{\n  \"a\": [1,\n  2,, 3]\n}", "expected a value but found ',' at line 3 column 5");
  BAD("[\"\xC3\xA9\", x]", "at line 1 column 7");
  BAD("\n\n   \"abc\\q\"", "invalid escape '\\q' at line 3 column 8");
  BAD("[\"abc", "unterminated string at line 1 column 2");
}

static void test_nesting(void) {
  char buf[2 * 520 + 1];
  for (int depth = 511; depth <= 513; depth++) {
    memset(buf, '[', (size_t)depth);
    memset(buf + depth, ']', (size_t)depth);
    lcc_json_doc *d = lcc_json_parse(buf, 2 * (size_t)depth, "t.json");
    if (depth <= 512) {
      CHECK(d != NULL);
      const lcc_json *v = lcc_json_root(d);
      int levels = 0;
      for (; v; v = v->child) levels++;
      CHECK(levels == depth);
    } else {
      CHECK(d == NULL && strstr(lcc_last_error(), "nesting deeper than 512 levels at line 1 column 513"));
    }
    lcc_json_free(d);
  }
  // objects count too
  char *s = lcc_malloc(600 * 8);
  size_t n = 0;
  for (int i = 0; i < 513; i++) n += (size_t)sprintf(s + n, "{\"k\":");
  n += (size_t)sprintf(s + n, "1");
  for (int i = 0; i < 513; i++) s[n++] = '}';
  expect_parse_error(s, n, "nesting deeper than 512 levels");
  free(s);
  // a deep unterminated document fails cleanly
  memset(buf, '[', 400);
  expect_parse_error(buf, 400, "unexpected end of input");
}

// A document shaped like Qwen's tokenizer.json (a 151k-member vocab object, a 151k-element merges array).
static void test_speed(void) {
  const int n = 151643;
  size_t cap = 16u << 20, len = 0;
  char *s = lcc_malloc(cap);
  len += (size_t)sprintf(s + len, "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {");
  for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s\"\xC4\xA0tok\\u00e9n%d\": %d", i ? ", " : "", i, i);
  len += (size_t)sprintf(s + len, "}, \"merges\": [");
  for (int i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s\"\xC4\xA0t ok%d\"", i ? ",\n  " : "", i);
  len += (size_t)sprintf(s + len, "]}}");
  double t0 = lcc_now();
  lcc_json_doc *d = lcc_json_parse(s, len, "tokenizer.json");
  double dt = lcc_now() - t0;
  CHECK(d);
  const lcc_json *model = lcc_json_get(lcc_json_root(d), "model");
  const lcc_json *vocab = lcc_json_get(model, "vocab"), *merges = lcc_json_get(model, "merges");
  CHECK(vocab && vocab->count == (size_t)n && merges && merges->count == (size_t)n);
  const lcc_json *last = vocab->child;
  while (last && last->next) last = last->next;
  char want[64];
  snprintf(want, sizeof want, "\xC4\xA0tok\xC3\xA9n%d", n - 1);
  CHECK(last && !strcmp(last->key, want) && last->integer == n - 1);
  printf("parsed a %.1f MB tokenizer-like document in %.3f s\n", (double)len / 1e6, dt);
  CHECK(dt < 0.5);
  lcc_json_free(d);
  free(s);
}

int main(void) {
  test_document();
  test_strings();
  test_numbers();
  test_syntax();
  test_nesting();
  test_speed();
  return test_finish("test_json");
}
