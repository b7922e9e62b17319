// cuDNN's fused scaled-dot-product attention (SDPA) for attention.cu, built through the cuDNN backend API
// (C: descriptors, operation graphs, heuristics, execution plans, variant packs). C++ only (kernels/cuda).
#ifndef LCC_CUDA_ATTENTION_CUDNN_H
#define LCC_CUDA_ATTENTION_CUDNN_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lcc_sdpa lcc_sdpa;   // a cuDNN handle, execution plans cached per shape, a workspace

// One attention call on a packed qkv [T, (Hq + 2 Hkv) D] (kernels/backend.h).
typedef struct {
  cudaStream_t stream;
  const __nv_bfloat16 *qkv;
  const int32_t *cu;   // [n_seq + 1] sequence offsets, host copy
  int n_seq, T, Hq, Hkv, D, causal;
  int forced;          // LCC_ATTENTION=cudnn: no workspace limits (the auto path keeps them)
} lcc_sdpa_call;

// NULL, with the reason in why, when cuDNN cannot start (no GPU, no library for this device).
lcc_sdpa *lcc_sdpa_create(char *why, size_t why_len);
void lcc_sdpa_destroy(lcc_sdpa *p);
// out [T, Hq D], lse [Hq, T]. 0 when cuDNN did the whole call; -1 with the reason otherwise (then the caller
// computes everything again: outputs may be partly written).
int lcc_sdpa_fwd(lcc_sdpa *p, const lcc_sdpa_call *c, __nv_bfloat16 *out, float *lse, char *why, size_t why_len);
// dqkv [T, (Hq + 2 Hkv) D] (rows of every sequence overwritten) from dout [T, Hq D]. Same return as above.
int lcc_sdpa_bwd(lcc_sdpa *p, const lcc_sdpa_call *c, __nv_bfloat16 *dqkv, const __nv_bfloat16 *out,
                 const __nv_bfloat16 *dout, const float *lse, char *why, size_t why_len);

#endif
