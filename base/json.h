// A small JSON reader (RFC 8259): parses a whole document into a tree held in one arena.
// Used for HF config.json, safetensors headers, index files, tokenizer.json and LiveCC JSONL lines.
#ifndef LCC_JSON_H
#define LCC_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LCC_JSON_NULL, LCC_JSON_BOOL, LCC_JSON_NUMBER, LCC_JSON_STRING, LCC_JSON_ARRAY, LCC_JSON_OBJECT } lcc_json_type;

typedef struct lcc_json lcc_json;
struct lcc_json {
  lcc_json_type type;
  int boolean;
  double number;       // every number
  int64_t integer;     // exact value when the number is an integer that fits int64 (is_integer = 1)
  int is_integer;
  const char *str;     // STRING: UTF-8, NUL-terminated, escapes decoded (may contain NUL: use str_len)
  size_t str_len;
  const char *key;     // member name when this value is inside an OBJECT, else NULL
  lcc_json *child;     // ARRAY / OBJECT: first element / member (in document order)
  lcc_json *next;      // next sibling
  size_t count;        // ARRAY / OBJECT: number of elements / members
};

typedef struct lcc_json_doc lcc_json_doc;

// Parses text[0..len). Returns NULL on error and records, with lcc_error(), "<what>: <reason> at line L
// column C", where what names the source (a file name, "sample 17 of x.jsonl"). Nesting is capped at 512.
lcc_json_doc *lcc_json_parse(const char *text, size_t len, const char *what);
const lcc_json *lcc_json_root(const lcc_json_doc *doc);
void lcc_json_free(lcc_json_doc *doc);

// Lookups return NULL when absent or when the node has the wrong type.
const lcc_json *lcc_json_get(const lcc_json *obj, const char *key);   // member of an OBJECT (first match)
const lcc_json *lcc_json_at(const lcc_json *arr, size_t i);           // element of an ARRAY (O(i))

#endif
