// libFuzzer target: the input is a whole GGUF file image for the reader (base/gguf.c). For images it
// accepts, every metadata value is read through the accessors and every tensor of a type it converts is
// converted, so ASan checks each length, count and offset the reader validated.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lcc_gguf_file *f = lcc_gguf_parse(data, size, "fuzz.gguf");
  if (!f) return 0;
  volatile double sink = 0;
  for (int i = 0; i < f->n_kv; i++) {
    const lcc_gguf_kv *kv = &f->kv[i];
    if (lcc_gguf_find(f, kv->key) != kv) __builtin_trap();   // keys are unique
    if (kv->type == LCC_GGUF_STRING) sink += (double)strlen(kv->str);
    if (kv->type != LCC_GGUF_ARRAY) continue;
    for (uint64_t k = 0; k < kv->n; k++) {
      if (kv->elem_type == LCC_GGUF_STRING) sink += (double)strlen(kv->strs[k]);
      else sink += lcc_gguf_arr_float(kv, k) + (double)lcc_gguf_arr_int(kv, k);
    }
  }
  for (int i = 0; i < f->n_tensors; i++) {
    const lcc_gguf_tensor *t = &f->tensors[i];
    if (lcc_gguf_find_tensor(f, t->name) != t) __builtin_trap();   // names are unique
    if (t->numel > (1 << 20)) continue;
    float *out = malloc((size_t)t->numel * sizeof(float) + 1);
    if (lcc_ggml_to_f32(t->type, lcc_gguf_data(f, t), t->numel, out) == 0 && t->numel) sink += out[t->numel - 1];
    free(out);
  }
  (void)sink;
  lcc_gguf_close(f);
  return 0;
}
