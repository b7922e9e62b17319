// Strict RFC 8259 reader. One recursive-descent pass builds the tree into two arenas owned by the document:
// nodes come from a short chain of geometrically growing blocks, and decoded strings go into one buffer as
// large as the input (a decoded string plus its NUL never takes more bytes than its quoted source).
// Object lookups are linear scans: fine for configs and headers; callers that look up many keys in a big
// object (tokenizer vocabularies) should walk the members once and build their own table.
// Numbers are converted with strtod, which assumes the default "C" locale (decimal point '.').
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_DEPTH 512

typedef struct block block;
struct block {
  block *next;
  size_t used, cap;
  lcc_json nodes[];
};

struct lcc_json_doc {
  lcc_json *root;
  char *strings;   // every decoded string and key, NUL-terminated, back to back
  block *blocks;   // newest first
};

typedef struct {
  const char *start, *p, *end;
  char *out;       // next free byte of doc->strings
  lcc_json_doc *doc;
  const char *what;
} parser;

// Records "<what>: <reason> at line L column C" for the byte at `at` (columns count UTF-8 characters).
static int fail(parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *ps, const char *at, const char *fmt, ...) {
  char reason[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  size_t line = 1, col = 1;
  for (const char *q = ps->start; q < at; q++) {
    if (*q == '\n') line++, col = 1;
    else if (((unsigned char)*q & 0xC0) != 0x80) col++;
  }
  return lcc_error("%s: %s at line %zu column %zu", ps->what, reason, line, col);
}

// Describes the byte at p for an error message: 'x' when printable, else its code.
static const char *describe(parser *ps, const char *p, char buf[16]) {
  if (p == ps->end) return "end of input";
  unsigned char c = (unsigned char)*p;
  if (c >= 0x20 && c < 0x7F) snprintf(buf, 16, "'%c'", c);
  else snprintf(buf, 16, "byte 0x%02X", c);
  return buf;
}

static int unexpected(parser *ps, const char *expected) {
  char buf[16];
  return fail(ps, ps->p, "expected %s but found %s", expected, describe(ps, ps->p, buf));
}

static lcc_json *new_node(parser *ps) {
  block *b = ps->doc->blocks;
  if (b->used == b->cap) {
    size_t cap = 2 * b->cap;
    block *nb = lcc_malloc(sizeof(block) + cap * sizeof(lcc_json));
    nb->next = b, nb->used = 0, nb->cap = cap;
    ps->doc->blocks = b = nb;
  }
  lcc_json *n = &b->nodes[b->used++];
  *n = (lcc_json){0};
  return n;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

// Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), or 0.
static int utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned lo = 0x80, hi = 0xBF;
  int n;
  if (p[0] >= 0xC2 && p[0] <= 0xDF) n = 2;
  else if (p[0] >= 0xE0 && p[0] <= 0xEF) n = 3, lo = p[0] == 0xE0 ? 0xA0 : lo, hi = p[0] == 0xED ? 0x9F : hi;
  else if (p[0] >= 0xF0 && p[0] <= 0xF4) n = 4, lo = p[0] == 0xF0 ? 0x90 : lo, hi = p[0] == 0xF4 ? 0x8F : hi;
  else return 0;
  if (end - p < n || p[1] < lo || p[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

static char *put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    *out++ = (char)cp;
  } else if (cp < 0x800) {
    *out++ = (char)(0xC0 | cp >> 6);
    *out++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out++ = (char)(0xE0 | cp >> 12);
    *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *out++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *out++ = (char)(0xF0 | cp >> 18);
    *out++ = (char)(0x80 | (cp >> 12 & 0x3F));
    *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
    *out++ = (char)(0x80 | (cp & 0x3F));
  }
  return out;
}

// Reads "\uXXXX" at p; returns the code unit or -1.
static long hex4(const char *p, const char *end) {
  if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
  long v = 0;
  for (int i = 2; i < 6; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v << 4 | d;
  }
  return v;
}

// Decodes the escape at ps->p (a backslash) into *out; advances both.
static int parse_escape(parser *ps, char **out) {
  const char *p = ps->p;
  if (p + 1 == ps->end) return fail(ps, p, "unterminated string");
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *hit = memchr(from, p[1], sizeof from - 1);
  if (hit) {
    *(*out)++ = to[hit - from];
    ps->p += 2;
    return 0;
  }
  if (p[1] != 'u') return fail(ps, p, "invalid escape '\\%c'", p[1] >= 0x20 && p[1] < 0x7F ? p[1] : '?');
  long cp = hex4(p, ps->end);
  if (cp < 0) return fail(ps, p, "invalid \\u escape (needs 4 hex digits)");
  ps->p += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, p, "lone low surrogate \\u%04lX", cp);
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    long lo = hex4(ps->p, ps->end);
    if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, p, "high surrogate \\u%04lX not followed by a low surrogate", cp);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    ps->p += 6;
  }
  *out = put_utf8(*out, (unsigned)cp);
  return 0;
}

// Parses the string at ps->p (an opening quote) into the string arena.
static int parse_string(parser *ps, const char **str, size_t *len) {
  const char *open = ps->p++;
  char *out = ps->out;
  *str = out;
  for (;;) {
    const char *run = ps->p;   // copy plain ASCII in one go: the common case
    unsigned char c;
    while (ps->p < ps->end && (c = (unsigned char)*ps->p) >= 0x20 && c < 0x80 && c != '"' && c != '\\') ps->p++;
    memcpy(out, run, (size_t)(ps->p - run));
    out += ps->p - run;
    if (ps->p == ps->end) return fail(ps, open, "unterminated string");
    c = (unsigned char)*ps->p;
    if (c == '"') break;
    if (c == '\\') {
      if (parse_escape(ps, &out)) return -1;
    } else if (c < 0x20) {
      return fail(ps, ps->p, "control character 0x%02X in string (must be escaped)", c);
    } else {
      int n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
      if (!n) return fail(ps, ps->p, "invalid UTF-8 in string");
      memcpy(out, ps->p, (size_t)n);
      out += n, ps->p += n;
    }
  }
  ps->p++;
  *len = (size_t)(out - *str);
  *out++ = 0;
  ps->out = out;
  return 0;
}

static int is_digit(parser *ps, const char *p) { return p < ps->end && *p >= '0' && *p <= '9'; }

// number = [-] (0 | [1-9][0-9]*) [. [0-9]+] [(e|E) [+|-] [0-9]+]
static int parse_number(parser *ps, lcc_json *v) {
  const char *s = ps->p, *p = s;
  int neg = *p == '-';
  p += neg;
  if (!is_digit(ps, p)) return fail(ps, s, "invalid number");
  if (*p == '0' && is_digit(ps, p + 1)) return fail(ps, s, "invalid number (leading zero)");
  uint64_t mag = 0;
  int fits = 1;   // magnitude still within int64 range
  for (; is_digit(ps, p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (mag > (UINT64_MAX - d) / 10) fits = 0;
    else mag = mag * 10 + d;
  }
  int integral = 1;
  if (p < ps->end && *p == '.') {
    if (!is_digit(ps, ++p)) return fail(ps, s, "invalid number (digit expected after '.')");
    while (is_digit(ps, p)) p++;
    integral = 0;
  }
  if (p < ps->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < ps->end && (*p == '+' || *p == '-')) p++;
    if (!is_digit(ps, p)) return fail(ps, s, "invalid number (digit expected in exponent)");
    while (is_digit(ps, p)) p++;
    integral = 0;
  }
  ps->p = p;
  v->type = LCC_JSON_NUMBER;
  if (integral && fits && mag <= (uint64_t)INT64_MAX + neg) {
    v->is_integer = 1;
    v->integer = neg ? (int64_t)(0 - mag) : (int64_t)mag;   // two's complement wrap gives INT64_MIN exactly
    v->number = (double)v->integer;                           // correctly rounded conversion
    return 0;
  }
  size_t n = (size_t)(p - s);   // strtod needs a terminated copy: the input need not end here
  char small[64], *buf = n < sizeof small ? small : lcc_malloc(n + 1);
  memcpy(buf, s, n);
  buf[n] = 0;
  v->number = strtod(buf, NULL);
  if (buf != small) free(buf);
  return 0;
}

static int parse_literal(parser *ps, lcc_json *v) {
  static const char *const words[] = {"null", "true", "false"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(words[i]);
    if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, words[i], n)) {
      v->type = i == 0 ? LCC_JSON_NULL : LCC_JSON_BOOL;
      v->boolean = i == 1;
      ps->p += n;
      return 0;
    }
  }
  return unexpected(ps, "a value");
}

static int parse_value(parser *ps, lcc_json *v, int depth);

// Parses '[' ... ']' or '{' ... '}' at ps->p into v, linking children in document order.
static int parse_container(parser *ps, lcc_json *v, int depth) {
  int is_obj = *ps->p == '{';
  char close = is_obj ? '}' : ']';
  if (depth > MAX_DEPTH) return fail(ps, ps->p, "nesting deeper than %d levels", MAX_DEPTH);
  v->type = is_obj ? LCC_JSON_OBJECT : LCC_JSON_ARRAY;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return 0;
  }
  lcc_json **tail = &v->child;
  for (;;) {
    lcc_json *item = new_node(ps);
    if (is_obj) {
      size_t klen;
      skip_ws(ps);
      if (ps->p == ps->end || *ps->p != '"') return unexpected(ps, "a string key");
      if (parse_string(ps, &item->key, &klen)) return -1;
      skip_ws(ps);
      if (ps->p == ps->end || *ps->p != ':') return unexpected(ps, "':' after the key");
      ps->p++;
    }
    if (parse_value(ps, item, depth)) return -1;
    *tail = item, tail = &item->next;
    v->count++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return 0;
    }
    return unexpected(ps, is_obj ? "',' or '}'" : "',' or ']'");
  }
}

static int parse_value(parser *ps, lcc_json *v, int depth) {
  skip_ws(ps);
  if (ps->p == ps->end) return fail(ps, ps->p, "unexpected end of input");
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, v, depth + 1);
  if (c == '"') {
    v->type = LCC_JSON_STRING;
    return parse_string(ps, &v->str, &v->str_len);
  }
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, v);
  return parse_literal(ps, v);
}

lcc_json_doc *lcc_json_parse(const char *text, size_t len, const char *what) {
  lcc_json_doc *doc = lcc_malloc(sizeof *doc);
  doc->strings = lcc_malloc(len + 1);
  size_t cap = 64 + len / 16;   // roughly one node per 16 input bytes; later blocks double
  doc->blocks = lcc_malloc(sizeof(block) + cap * sizeof(lcc_json));
  doc->blocks->next = NULL, doc->blocks->used = 0, doc->blocks->cap = cap;
  parser ps = {.start = text, .p = text, .end = text + len, .out = doc->strings, .doc = doc, .what = what};
  doc->root = new_node(&ps);
  if (parse_value(&ps, doc->root, 0)) {
    lcc_json_free(doc);
    return NULL;
  }
  skip_ws(&ps);
  if (ps.p != ps.end) {
    char buf[16];
    fail(&ps, ps.p, "unexpected %s after the document", describe(&ps, ps.p, buf));
    lcc_json_free(doc);
    return NULL;
  }
  return doc;
}

const lcc_json *lcc_json_root(const lcc_json_doc *doc) { return doc ? doc->root : NULL; }

void lcc_json_free(lcc_json_doc *doc) {
  if (!doc) return;
  for (block *b = doc->blocks, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(doc->strings);
  free(doc);
}

const lcc_json *lcc_json_get(const lcc_json *obj, const char *key) {
  if (!obj || obj->type != LCC_JSON_OBJECT) return NULL;
  for (const lcc_json *m = obj->child; m; m = m->next)
    if (!strcmp(m->key, key)) return m;
  return NULL;
}

const lcc_json *lcc_json_at(const lcc_json *arr, size_t i) {
  if (!arr || arr->type != LCC_JSON_ARRAY || i >= arr->count) return NULL;
  const lcc_json *e = arr->child;
  while (i--) e = e->next;
  return e;
}
