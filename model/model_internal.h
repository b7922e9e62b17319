// Shared by the call lists (forward.c, backward.c, infer.c) only: byte offsets into act-typed buffers, one
// decoder layer's activation buffers, and its forward (which backward runs again for a layer whose
// activations were not kept: activation recompute).
#ifndef LCC_MODEL_INTERNAL_H
#define LCC_MODEL_INTERNAL_H

#include "model.h"

// base + elems elements of the backend's activation type (fp32 or bf16).
static inline void *act_at(const lcc_model *m, void *base, size_t elems) {
  return (char *)base + elems * m->be->act_bytes;
}

typedef struct {
  void *n1, *qkv, *att, *h, *n2, *gu, *s;   // [T,C] [T,Q] [T,Hq*D] [T,C] [T,C] [T,2I] [T,I]
  float *rstd1, *rstd2, *lse;               // [T] [T] [Hq, T]
} lcc_layer_acts;

lcc_layer_acts lcc_layer_acts_of(lcc_model *m, int l);
void lcc_decoder_layer_forward(lcc_model *m, int l);   // x[l] -> x[l+1], filling layer l's buffers

#endif
