// CUDA_CHECK: a CUDA runtime call that must succeed, or the process exits naming the call and CUDA's message.
// Plain C, so the NCCL communicator (dist/comm_nccl.c) shares it with the kernels (cuda_common.h).
#ifndef LCC_CUDA_CHECK_H
#define LCC_CUDA_CHECK_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {   // util.h is a plain C header
#endif
#include "util.h"
#ifdef __cplusplus
}
#endif

#define CUDA_CHECK(call)                                                                                     \
  do {                                                                                                       \
    cudaError_t err_ = (call);                                                                               \
    if (err_ != cudaSuccess) lcc_fatal("%s: %s (%s)", #call, cudaGetErrorString(err_), cudaGetErrorName(err_)); \
  } while (0)

#endif
