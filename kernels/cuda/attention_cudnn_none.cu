// Builds without cuDNN (kernels/CMakeLists.txt): the cuDNN path cannot start, so attention.cu runs its own
// kernels (and LCC_ATTENTION=cudnn is a fatal error naming this).
#include <stdio.h>

#include "attention_cudnn.h"

lcc_sdpa *lcc_sdpa_create(char *why, size_t why_len) {
  snprintf(why, why_len, "this build has no cuDNN (configure with CUDNN_PATH set to find it)");
  return NULL;
}

// Never called: there is no lcc_sdpa without cuDNN.
void lcc_sdpa_destroy(lcc_sdpa *p) {}
int lcc_sdpa_fwd(lcc_sdpa *p, const lcc_sdpa_call *c, __nv_bfloat16 *out, float *lse, char *why, size_t why_len) { return -1; }
int lcc_sdpa_bwd(lcc_sdpa *p, const lcc_sdpa_call *c, __nv_bfloat16 *dqkv, const __nv_bfloat16 *out,
                 const __nv_bfloat16 *dout, const float *lse, char *why, size_t why_len) {
  return -1;
}
