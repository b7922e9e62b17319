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

// One decoder layer's tensors by name, as the call lists use them: the compute weights (act type) or their
// fp32 gradients (NULL where frozen). q, k, v are one matrix and gate, up another (adjacent in the layout).
typedef struct {
  void *in_norm;     // [C]
  void *qkv_w;       // [Q, C]  Q = Hq*D + 2*Hkv*D: q rows, then k, then v
  void *qkv_b;       // [Q]
  void *o_w;         // [C, Hq*D]
  void *post_norm;   // [C]
  void *gate_up_w;   // [2I, C]: gate rows, then up
  void *down_w;      // [C, I]
} lcc_decoder_tensors;

// One ViT block's tensors by name (weights or gradients, as above).
typedef struct {
  void *norm1_w, *norm1_b;   // [E] [E]
  void *qkv_w, *qkv_b;       // [3E, E] [3E]
  void *proj_w, *proj_b;     // [E, E] [E]
  void *norm2_w, *norm2_b;   // [E] [E]
  void *fc1_w, *fc1_b;       // [M, E] [M]
  void *fc2_w, *fc2_b;       // [E, M] [E]
} lcc_vit_tensors;

// t(m, index): lcc_w for the weights, lcc_g (as void *) for the gradients.
typedef void *(*lcc_tensor_of)(const lcc_model *m, int i);
static inline void *lcc_g_any(const lcc_model *m, int i) { return lcc_g(m, i); }

static inline lcc_decoder_tensors lcc_decoder_of(const lcc_model *m, int l, lcc_tensor_of t) {
  const int *ix = m->dec_idx[l];
  return (lcc_decoder_tensors){t(m, ix[DL_IN_NORM]), t(m, ix[DL_Q_W]), t(m, ix[DL_Q_B]), t(m, ix[DL_O_W]),
                               t(m, ix[DL_POST_NORM]), t(m, ix[DL_GATE_W]), t(m, ix[DL_DOWN_W])};
}

static inline lcc_vit_tensors lcc_vit_of(const lcc_model *m, int b, lcc_tensor_of t) {
  const int *ix = m->vit_idx[b];
  return (lcc_vit_tensors){t(m, ix[VB_NORM1_W]), t(m, ix[VB_NORM1_B]), t(m, ix[VB_QKV_W]), t(m, ix[VB_QKV_B]),
                           t(m, ix[VB_PROJ_W]),  t(m, ix[VB_PROJ_B]),  t(m, ix[VB_NORM2_W]), t(m, ix[VB_NORM2_B]),
                           t(m, ix[VB_FC1_W]),   t(m, ix[VB_FC1_B]),   t(m, ix[VB_FC2_W]),   t(m, ix[VB_FC2_B])};
}
void lcc_decoder_layer_forward(lcc_model *m, int l);   // x[l] -> x[l+1], filling layer l's buffers

#endif
