// libFuzzer target: any byte string through the JSON reader, then a walk over the whole tree.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json.h"

// Touches every node so ASan sees any bad link or string.
static size_t walk(const lcc_json *v) {
  size_t n = 1, kids = 0;
  if (v->key) n += strlen(v->key);
  if (v->type == LCC_JSON_STRING && v->str[v->str_len] != 0) __builtin_trap();
  for (const lcc_json *c = v->child; c; c = c->next) n += walk(c), kids++;
  if ((v->type == LCC_JSON_ARRAY || v->type == LCC_JSON_OBJECT) && kids != v->count) __builtin_trap();
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lcc_json_doc *doc = lcc_json_parse((const char *)data, size, "fuzz");
  if (doc) {
    const lcc_json *root = lcc_json_root(doc);
    walk(root);
    lcc_json_get(root, "a");
    lcc_json_at(root, 1);
  }
  lcc_json_free(doc);
  return 0;
}
