// The CUDA backend, callable from C: bf16 activations and compute weights, fp32 master weights, gradients,
// statistics and losses (see kernels/backend.h for every op's semantics).
#ifndef LCC_BACKEND_CUDA_H
#define LCC_BACKEND_CUDA_H

#include <cuda_runtime.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif
// The backend on CUDA device `device` (0-based; exits with a message when there is no such device). It makes
// that device current on the calling thread: call its ops from that thread (or call cudaSetDevice first).
lcc_backend *lcc_cuda_backend(int device);
// The stream every op of this backend runs on, in call order (for NCCL and events).
cudaStream_t lcc_cuda_stream(lcc_backend *be);
#ifdef __cplusplus
}
#endif

#endif
