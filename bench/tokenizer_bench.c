// Tokenizer throughput, single thread: loads a tokenizer.json (timed), then encodes the lines of a cases file
// (tests/fixtures/tokenizer/cases.safetensors: tensors text U8 and text_off I32), repeated until at least
// min_mb megabytes, and prints MB/s. bench/tokenizer_vs_hf.sh runs it beside HF tokenizers.
//   bench_tokenizer tokenizer.json [cases.safetensors [min_mb]]
#include <stdio.h>
#include <stdlib.h>

#include "safetensors.h"
#include "tokenizer.h"
#include "util.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s tokenizer.json [cases.safetensors [min_mb]]\n", argv[0]);
    return 2;
  }
  double t0 = lcc_now();
  lcc_tokenizer *tk = lcc_tokenizer_load(argv[1]);
  if (!tk) {
    fprintf(stderr, "%s\n", lcc_last_error());
    return 1;
  }
  printf("c_load_s=%.4f vocab=%d\n", lcc_now() - t0, lcc_tokenizer_vocab_size(tk));
  if (argc < 3) {
    lcc_tokenizer_free(tk);
    return 0;
  }
  double min_mb = argc > 3 ? atof(argv[3]) : 5.0;
  lcc_st_file *f = lcc_st_open(argv[2]);
  const lcc_st_tensor *text = f ? lcc_st_find(f, "text") : NULL, *off = f ? lcc_st_find(f, "text_off") : NULL;
  if (!text || !off || text->dtype != LCC_U8 || off->dtype != LCC_I32) {
    fprintf(stderr, "%s: %s\n", argv[2], f ? "needs tensors text (U8) and text_off (I32)" : lcc_last_error());
    return 1;
  }
  const char *data = lcc_st_data(f, text);     // [text_off[n]] the lines, back to back
  const int32_t *offs = lcc_st_data(f, off);   // [n + 1]
  int n = (int)off->numel - 1;
  lcc_tok_scratch *s = lcc_tok_scratch_new();
  lcc_ids ids = {0};
  double bytes = 0;
  size_t n_ids = 0;
  t0 = lcc_now();
  while (bytes < min_mb * 1e6) {
    for (int i = 0; i < n; i++) {
      ids.n = 0;
      if (lcc_tokenizer_encode(tk, s, data + offs[i], (size_t)(offs[i + 1] - offs[i]), &ids)) {
        fprintf(stderr, "%s\n", lcc_last_error());
        return 1;
      }
      bytes += offs[i + 1] - offs[i], n_ids += (size_t)ids.n;
    }
  }
  double dt = lcc_now() - t0;
  printf("c_mb=%.2f c_s=%.3f c_mb_per_s=%.2f c_ids=%zu\n", bytes / 1e6, dt, bytes / 1e6 / dt, n_ids);
  lcc_ids_free(&ids);
  lcc_tok_scratch_free(s);
  lcc_st_close(f);
  lcc_tokenizer_free(tk);
  return 0;
}
