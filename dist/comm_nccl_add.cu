// The NCCL communicator's accumulate step (comm_nccl.c): out += a on the communication stream, after the
// reduce that produced a.
#include <cuda_runtime.h>
#include <stddef.h>

extern "C" {
#include "util.h"
}

static __global__ void add_kernel(float *out, const float *a, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) out[i] += a[i];
}

extern "C" void lcc_nccl_add_f32(float *out, const float *a, size_t n, cudaStream_t s) {
  const size_t blocks = (n + 255) / 256;
  add_kernel<<<(unsigned)(blocks < 65536 ? blocks : 65536), 256, 0, s>>>(out, a, n);
  cudaError_t err = cudaGetLastError();
  LCC_CHECK(err == cudaSuccess, "comm_nccl add kernel: %s", cudaGetErrorString(err));
}
