// The CUDA attention ops (attention_fwd, attention_bwd, attention_cached), implemented in attention.cu.
#ifndef LCC_CUDA_ATTENTION_H
#define LCC_CUDA_ATTENTION_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif
// Fills be's attention entries; lcc_cuda_backend calls it once the rest of the table is set.
void lcc_cuda_attention_install(lcc_backend *be);
#ifdef __cplusplus
}
#endif

#endif
