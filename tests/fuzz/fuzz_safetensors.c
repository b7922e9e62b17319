// libFuzzer target: the input is a whole safetensors file image. Mirrors lcc_st_open (8-byte length, header
// limit) and, when the header validates, converts every floating tensor so ASan checks the data bounds.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "safetensors.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 8) return 0;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = header_len << 8 | data[i];
  if (header_len > size - 8) return 0;   // lcc_st_open rejects these before parsing
  lcc_st_file *f = lcc_calloc(1, sizeof *f);
  f->path = lcc_strdup("fuzz.safetensors");
  if (lcc_st_parse_header(f, (const char *)data + 8, (size_t)header_len, size) == 0) {
    f->map = (void *)data;
    for (int i = 0; i < f->n; i++) {
      const lcc_st_tensor *t = &f->tensors[i];
      if (lcc_st_find(f, t->name) != t) __builtin_trap();
      float *out = malloc(t->numel * sizeof(float) + 1);
      lcc_st_read_f32(f, t, out);
      free(out);
    }
    f->map = NULL;   // the input is not a mapping: keep lcc_st_close from unmapping it
  }
  lcc_st_close(f);
  return 0;
}
